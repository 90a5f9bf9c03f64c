namespace Cpns.Actors.Protocol;

/// <summary>A member whose leaf moved to another position of the tree.</summary>
public sealed record LkhMove(string MemberId, int Position) : ICpnsMessage;
