namespace Cpns.Actors.Protocol;

/// <summary>One new node key, encrypted under the key of one of that node's children (positions in the new tree).</summary>
public readonly record struct LkhWrap(int Node, int Under, Octets Ciphertext);
