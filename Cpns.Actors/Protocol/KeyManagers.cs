
namespace Cpns.Actors.Protocol;

// ---- The distributed topology (seed §5.3.1.9.5): a Group Key Manager per service group on a gateway node ----
// Between the server's CSKMF (which keeps every epoch the managers make) and a group's Group Key Manager; all signed by the
// distributed CPNS Server's identity, so a cluster peer cannot forge them.

/// <summary>Step 2 (distributed): the server's CSKMF asks the group's Group Key Manager for the key of an epoch.</summary>
public sealed record GkmCreateKey(string GroupId, long Epoch, KeyParameters Parameters) : ICpnsMessage, IWithGroupId;

/// <summary>
/// What a Group Key Manager sends carries its KMC credential (kind KeyManager): the server and PN GWs take a manager's
/// keys from it, checked against the KMC root, so a gateway node added later needs no list to be handed round.
/// </summary>
public interface IFromKeyManager
{
    Credential? ManagerCredential { get; }
}

/// <summary>
/// Step 5 (distributed): the Group Key Manager registers the epoch's key, wrapped for the server alone (the managers and
/// the server share no KEK), at the server's CSKMF, from which members pull it (indirect delivery).
/// <paramref name="ManagerNode"/> is the node it runs on.
/// </summary>
public sealed record GkmKeyIssued(string GroupId, long Epoch, KeyParameters Parameters, Octets KeyForServer, Octets KeyCheck,
    string ManagerNode) : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    public Credential? ManagerCredential { get; init; }
}

public enum GkmRefusal
{
    /// <summary>The epoch is not after the manager's last one, and it does not hold it (never reuse an epoch number).</summary>
    StaleEpoch,
    Revoked,
}

public sealed record GkmKeyRefused(string GroupId, long Epoch, GkmRefusal Reason, long LastEpoch, string Detail)
    : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    public Credential? ManagerCredential { get; init; }
}

/// <summary>
/// A manager cannot push an epoch that another gateway node's manager made before a failover (that key is sealed under
/// the other node's KEK): the server, which holds every epoch, delivers it itself.
/// </summary>
public sealed record GkmPushDeclined(string GroupId, long Epoch, string Reason) : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    public Credential? ManagerCredential { get; init; }
}

/// <summary>
/// Push step 8 (distributed): the Group Key Manager delivers the epoch directly — wrapped for each of
/// <paramref name="Targets"/> alone (with the LKH path the registry keeps for it, if any, from <paramref name="Paths"/>),
/// and, for a group keyed through a logical key hierarchy, <paramref name="Broadcast"/> signed once to every one of
/// <paramref name="BroadcastTargets"/>.
/// </summary>
public sealed record GkmPush(
    string GroupId,
    long Epoch,
    DeliveryMode Mode,
    EpochAnnouncement Announcement,
    IReadOnlyList<KeyDeliveryTarget> Targets,
    IReadOnlyDictionary<string, LkhPath>? Paths = null,
    GroupRekeyBroadcast? Broadcast = null,
    IReadOnlyList<KeyDeliveryTarget>? BroadcastTargets = null) : ICpnsMessage, IWithGroupId;

/// <summary>Revocation (distributed): the group was deleted; its Group Key Manager destroys every key it holds.</summary>
public sealed record GkmRevoke(string GroupId, long FinalEpoch) : ICpnsMessage, IWithGroupId;

public sealed record GkmRevoked(string GroupId, long FinalEpoch) : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    public Credential? ManagerCredential { get; init; }
}

/// <summary>Where a group's Group Key Manager runs and how far it got.</summary>
public sealed record GetGkmState(string GroupId) : ICpnsMessage, IWithGroupId;

public sealed record GkmState(string GroupId, string Node, long LastEpoch, IReadOnlyList<long> Epochs, bool Revoked) : ICpnsMessage, IWithGroupId;

/// <summary>
/// Published on the event stream of the node where a Group Key Manager made (or re-announced) an epoch's key: the
/// trace tests use to show that no two managers ever announce one epoch with different keys.
/// </summary>
public sealed record GkmEpochAnnounced(string GroupId, long Epoch, Octets KeyCheck, string Node, bool Created) : ICpnsMessage, IWithGroupId;

// ---- Cluster status ----

/// <summary>Asks a node's <c>cluster-status</c> actor for the cluster as that node sees it.</summary>
public sealed record GetClusterStatus : ICpnsMessage
{
    public static readonly GetClusterStatus Instance = new();
}

public sealed record ClusterMemberStatus(string Address, string Status, IReadOnlyList<string> Roles, bool Reachable) : ICpnsMessage;

public sealed record GroupManagerPlacement(string GroupId, string Node) : ICpnsMessage, IWithGroupId;

public sealed record GroupStatusLine(string GroupId, long Epoch, int Members, string? ManagerNode, IReadOnlyList<string> Acknowledged,
    IReadOnlyList<string> Pending) : ICpnsMessage, IWithGroupId;

public sealed record ClusterStatus(string Node, IReadOnlyList<ClusterMemberStatus> Members, IReadOnlyList<GroupManagerPlacement> Managers,
    IReadOnlyList<GroupStatusLine> Groups) : ICpnsMessage;

/// <summary>Asks a gateway node for the Group Key Managers it hosts now (from its shard region).</summary>
public sealed record GetLocalGroupKeyManagers : ICpnsMessage
{
    public static readonly GetLocalGroupKeyManagers Instance = new();
}

public sealed record LocalGroupKeyManagers(string Node, IReadOnlyList<string> GroupIds) : ICpnsMessage;
