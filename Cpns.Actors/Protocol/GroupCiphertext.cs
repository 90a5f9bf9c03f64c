namespace Cpns.Actors.Protocol;

/// <summary>
/// Content encrypted under a group's epoch key. The header — group id, epoch, sender — travels in clear and is
/// bound as associated data, so a ciphertext cannot be replayed into another group, epoch or sender.
/// </summary>
public sealed record GroupCiphertext(string GroupId, long Epoch, string SenderId, Octets Sealed) : ICpnsMessage, IWithGroupId;
