using Akka.Actor;

namespace Cpns.Actors.Protocol;

public enum GroupError
{
    InvalidRequest,
    UnknownGroup,
    GroupExists,
    UnknownMember,
    AlreadyMember,
    NotMember,
    NotAuthorized,
    KeyUnavailable,
}

public enum GroupChange
{
    Created,
    MemberAdded,
    MemberRemoved,
    Deleted,
    Rekeyed,
}

// ---- Service-group management requests to the CPNS Server's SMF ----

public sealed record CreateGroup(
    string GroupId,
    string RequesterId,
    DeliveryMode Mode,
    IReadOnlyList<string> Members) : ICpnsMessage, IWithGroupId;

public sealed record AddMember(string GroupId, string RequesterId, string MemberId) : ICpnsMessage, IWithGroupId;

public sealed record RemoveMember(string GroupId, string RequesterId, string MemberId) : ICpnsMessage, IWithGroupId;

public sealed record DeleteGroup(string GroupId, string RequesterId) : ICpnsMessage, IWithGroupId;

/// <summary>The change is committed (and durable): the group is at <paramref name="Epoch"/>.</summary>
public sealed record GroupAccepted(
    string GroupId,
    GroupChange Change,
    long Epoch,
    IReadOnlyList<string> Members) : ICpnsMessage, IWithGroupId;

public sealed record GroupRejected(string GroupId, GroupError Error, string Detail) : ICpnsMessage, IWithGroupId;

public sealed record GetGroup(string GroupId) : ICpnsMessage, IWithGroupId;

public sealed record GroupState(
    string GroupId,
    DeliveryMode Mode,
    long Epoch,
    IReadOnlyList<string> Members,
    bool Exists) : ICpnsMessage, IWithGroupId;

// ---- Server SMF → PN GW SMF (CPNS-2/3/4), and PN GW SMF → PNE SMF (CPNS-1) ----

public enum NoticeKind
{
    Created,
    Updated,
}

/// <summary>
/// Step 7 of both key flows: the group was created or changed; its properties, where its key is, and how
/// it arrives. <paramref name="LocalMembers"/> are the members reached through the recipient.
/// </summary>
public sealed record GroupNotice(
    string GroupId,
    long Epoch,
    DeliveryMode Mode,
    NoticeKind Kind,
    IActorRef KeyLocation,
    IReadOnlyList<string> LocalMembers,
    IReadOnlyList<string> Removed) : ICpnsMessage, IWithGroupId;

/// <summary>The group is deleted: its key is revoked everywhere.</summary>
public sealed record GroupDeletedNotice(string GroupId, long FinalEpoch) : ICpnsMessage, IWithGroupId;

/// <summary>A member was removed from the group: it must drop the group's keys.</summary>
public sealed record MembershipEnded(string GroupId, string DeviceId, long Epoch)
    : ICpnsMessage, IWithGroupId, IWithDeviceId;

/// <summary>Asks a PN GW's or PNE's SMF what it knows of its groups.</summary>
public sealed record GetLocalGroups : ICpnsMessage
{
    public static readonly GetLocalGroups Instance = new();
}

public sealed record LocalGroup(string GroupId, DeliveryMode Mode, long Epoch, IReadOnlyList<string> LocalMembers)
    : ICpnsMessage, IWithGroupId;

public sealed record LocalGroups(string DeviceId, IReadOnlyList<LocalGroup> Groups) : ICpnsMessage, IWithDeviceId;
