namespace Cpns.Actors.Protocol;

/// <summary>What an entity says of itself.</summary>
public enum Presence
{
    Online,
    Busy,
    Offline,
}

/// <summary>An entity's status: what it published, whether it can be reached now, and a free note.</summary>
public sealed record EntityStatus(string DeviceId, Presence Presence, bool Reachable, string Note) : ICpnsMessage, IWithDeviceId;

/// <summary>An entity publishes its status (signed by it; a PNE's goes through its PN GW).</summary>
public sealed record PublishStatus(string DeviceId, Presence Presence, string Note) : ICpnsMessage, IWithDeviceId;

/// <summary>A PN GW reports a PNE's reachability to the server's status function.</summary>
public sealed record ReachabilityReport(string GatewayId, string DeviceId, bool Reachable) : ICpnsMessage, IWithGatewayId, IWithDeviceId;

/// <summary>
/// Subscribes <paramref name="Subscriber"/> to the status of an entity, or of a whole PN (target <c>pn:{gatewayId}</c>),
/// on behalf of <paramref name="WatcherId"/>, whom the group ACLs must allow to see it.
/// </summary>
public sealed record WatchStatus(string WatcherId, string Target, Akka.Actor.IActorRef Subscriber) : INodeLocal;

public sealed record UnwatchStatus(string WatcherId, string Target) : INodeLocal;

/// <summary>
/// A device subscribes to the status of an entity or a whole PN (<c>pn:{gatewayId}</c>) over CPNS: signed by the
/// watcher (a PNE's goes through its PN GW), answered with <see cref="WatchAccepted"/> or <see cref="WatchRejected"/>,
/// then a <see cref="StatusChanged"/> per real change. Its applications ask the PNE with this in a <c>LocalRequest</c>.
/// </summary>
public sealed record SubscribeStatus(string WatcherId, string Target) : ICpnsMessage;

public sealed record UnsubscribeStatus(string WatcherId, string Target) : ICpnsMessage;

/// <summary>Asks a PNE for the latest status it heard of each entity it watches.</summary>
public sealed record GetWatchedStatuses : INodeLocal
{
    public static readonly GetWatchedStatuses Instance = new();
}

public sealed record WatchedStatuses(IReadOnlyList<EntityStatus> Statuses) : INodeLocal;

public sealed record WatchAccepted(string WatcherId, string Target, IReadOnlyList<EntityStatus> Current) : ICpnsMessage;

public sealed record WatchRejected(string WatcherId, string Target, GroupError Error, string Detail) : ICpnsMessage;

/// <summary>Sent to a subscriber when a watched status really changed (bursts coalesced to the latest).</summary>
public sealed record StatusChanged(string WatcherId, EntityStatus Status) : ICpnsMessage;

public sealed record GetStatus(string DeviceId) : INodeLocal, IWithDeviceId;

/// <summary>The status of an entity as a PIDF document (RFC 3863), for the presence dependency.</summary>
public sealed record GetPidf(string DeviceId) : INodeLocal, IWithDeviceId;

/// <summary>Asks the server's status function what it did with the statuses it was given.</summary>
public sealed record GetStatusStats : INodeLocal
{
    public static readonly GetStatusStats Instance = new();
}

/// <param name="Unchanged">Statuses published that were what the server already held: no watcher hears of them.</param>
/// <param name="Suppressed">Notifications not sent at the end of a coalescing window because the watcher already
/// had that state (a burst that ended where it began).</param>
/// <param name="Sent">Notifications sent to watchers.</param>
/// <param name="Subscriptions">Watches held now (watcher and target), local and over CPNS.</param>
public sealed record StatusStats(long Unchanged, long Suppressed, long Sent, int Subscriptions = 0) : INodeLocal;

public sealed record PidfDocument(string DeviceId, string Xml) : ICpnsMessage, IWithDeviceId;

/// <summary>Inside the server: may this watcher see that target (it shares a group where it holds at least View)?</summary>
public sealed record AuthorizeView(long RequestId, string WatcherId, IReadOnlyList<string> Targets) : INodeLocal;

public sealed record ViewAuthorization(long RequestId, bool Allowed, string Detail) : INodeLocal;
