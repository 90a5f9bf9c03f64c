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
    InsufficientSecurityLevel,
    /// <summary>The server's SMF is behind: the request may go again after the rejection's <c>RetryAfterMs</c>.</summary>
    Busy,
    /// <summary>No answer came in time (the requester's own verdict; the request may or may not have been carried out).</summary>
    TimedOut,
}

/// <summary>Privileges on a group or a service, in the spirit of Matter's: each includes the ones below it.</summary>
public enum Privilege
{
    None = 0,
    View = 1,
    Operate = 2,
    Manage = 3,
    Administer = 4,
}

/// <summary>Who may add themselves to a group: nobody (Closed: a manager adds them) or any registered entity (Open).</summary>
public enum JoinPolicy
{
    Closed,
    Open,
}

public sealed record AclEntry(string SubjectId, Privilege Privilege) : ICpnsMessage;

public enum GroupChange
{
    Created,
    MemberAdded,
    MemberRemoved,
    Deleted,
    Rekeyed,
    PrivilegeGranted,
}

// ---- Service-group management requests to the CPNS Server's SMF ----

/// <summary>
/// Creates a service group; its creator administers it. <paramref name="RequiredSecurityLevel"/> is the least
/// PN security a member's PN must offer before the group's key enters it.
/// </summary>
public sealed record CreateGroup(
    string GroupId,
    string RequesterId,
    DeliveryMode Mode,
    IReadOnlyList<string> Members,
    SecurityLevel RequiredSecurityLevel = SecurityLevel.None,
    JoinPolicy JoinPolicy = JoinPolicy.Closed) : ICpnsMessage, IWithGroupId;

/// <summary>Adds a member (who then receives the group's key); needs Manage, or an open group and the member itself asking.</summary>
public sealed record AddMember(string GroupId, string RequesterId, string MemberId, Privilege Privilege = Privilege.Operate)
    : ICpnsMessage, IWithGroupId;

/// <summary>Sets a subject's privilege on the group (needs Administer; never above the requester's own).</summary>
public sealed record GrantPrivilege(string GroupId, string RequesterId, string SubjectId, Privilege Privilege)
    : ICpnsMessage, IWithGroupId;

public sealed record RemoveMember(string GroupId, string RequesterId, string MemberId) : ICpnsMessage, IWithGroupId;

public sealed record DeleteGroup(string GroupId, string RequesterId) : ICpnsMessage, IWithGroupId;

/// <summary>The change is committed (and durable): the group is at <paramref name="Epoch"/>.</summary>
public sealed record GroupAccepted(
    string GroupId,
    GroupChange Change,
    long Epoch,
    IReadOnlyList<string> Members) : ICpnsMessage, IWithGroupId;

public sealed record GroupRejected(string GroupId, GroupError Error, string Detail, int RetryAfterMs = 0) : ICpnsMessage, IWithGroupId;

public sealed record GetGroup(string GroupId) : INodeLocal, IWithGroupId;

public sealed record ListGroups : INodeLocal
{
    public static readonly ListGroups Instance = new();
}

public sealed record GroupList(IReadOnlyList<GroupState> Groups) : INodeLocal;

public sealed record GroupState(
    string GroupId,
    DeliveryMode Mode,
    long Epoch,
    IReadOnlyList<string> Members,
    bool Exists,
    SecurityLevel RequiredSecurityLevel = SecurityLevel.None,
    IReadOnlyList<AclEntry>? Acl = null) : ICpnsMessage, IWithGroupId;

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
public sealed record GetLocalGroups : INodeLocal
{
    public static readonly GetLocalGroups Instance = new();
}

public sealed record LocalGroup(string GroupId, DeliveryMode Mode, long Epoch, IReadOnlyList<string> LocalMembers)
    : ICpnsMessage, IWithGroupId;

public sealed record LocalGroups(string DeviceId, IReadOnlyList<LocalGroup> Groups) : INodeLocal, IWithDeviceId;

/// <summary>
/// A PN GW (to the server's SMF) or a PNE (to its PN GW's SMF) that has just registered asks for the current
/// epoch of every group it takes part in; the answer is the usual step-7 notices, and a push where the group pushes.
/// </summary>
public sealed record SyncGroups(string DeviceId) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// The operator's authority in group requests: a reserved requester id no device can hold (device ids are refused
/// it), accepted only in node-local requests, never in a signed one.
/// </summary>
public static class Operator
{
    public const string Id = "operator";
}
