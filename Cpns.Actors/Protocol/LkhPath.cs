namespace Cpns.Actors.Protocol;

/// <summary>
/// One member's whole path in an LKH tree — its leaf key and every ancestor's key, as of the tree of
/// <paramref name="TreeEpoch"/> — sealed for that member alone (ephemeral-static, by the key manager). A member
/// gets it with a key delivered to it alone (when the tree is built, or after it missed a rekey) and can then
/// follow the rekey broadcasts.
/// </summary>
public sealed record LkhPath(long TreeEpoch, int Position, int Size, Octets SealedKeys) : ICpnsMessage;
