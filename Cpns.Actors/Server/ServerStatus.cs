using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Common;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's Status Management function (<c>status</c>): what entities publish (online, busy, offline and a
/// note), and whether they can be reached (registration, expiry, and the PN GWs' reachability reports). Watchers
/// subscribe to an entity or a whole PN — allowed by the group ACLs — and hear of real changes only, a burst
/// coalesced to its latest state. Status is soft state: it is not journaled.
/// </summary>
public sealed class ServerStatus : UntypedActor, IWithTimers
{
    public const string PnPrefix = "pn:";

    private sealed record Flush : INoSerializationVerificationNeeded
    {
        public static readonly Flush Instance = new();
    }

    /// <param name="OverCpns">A device that subscribed over CPNS: what it hears goes to it sealed, as protocol.</param>
    private sealed record Watcher(string WatcherId, IActorRef Subscriber, bool OverCpns);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly CpnsSettings _settings;
    private readonly IActorRef _smf;
    private readonly IActorRef _directory;
    private readonly Placements _placements = new();
    private readonly Dictionary<string, EntityStatus> _statuses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Watcher>> _watchers = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (WatchStatus Watch, IActorRef Asker, bool OverCpns)> _authorizing = new();
    private readonly Dictionary<Watcher, Dictionary<string, EntityStatus>> _unsent = new();
    private readonly Dictionary<(Watcher, string DeviceId), EntityStatus> _lastSent = new();
    private long _nextRequestId;

    public ServerStatus(EntityIdentity identity, IActorRef smf, IActorRef directory, CpnsSettings settings)
    {
        _settings = settings;
        _link = new SecureLink(Context, identity, settings, _log);
        _smf = smf;
        _directory = directory;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private StatusStats _stats = new(0, 0, 0);

    public static Props Props(EntityIdentity identity, IActorRef smf, IActorRef directory, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerStatus>(identity, smf, directory, settings);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GatewayPlaced placed:
                _placements.ApplyAndTrust(placed, _link.Guard, trustPnes: true);
                Set(placed.GatewayId, s => s with { Presence = Presence.Online, Reachable = true });
                break;
            case PnesPlaced placed:
                _placements.ApplyAndTrust(placed, _link.Guard, trustPnes: true);
                foreach (var pne in placed.Pnes)
                    Set(pne.DeviceId, s => s with { Presence = Presence.Online, Reachable = true });
                break;
            case EntitiesRemoved removed:
                // Watchers of the PN it was in hear it went offline before it leaves the placements.
                foreach (var id in removed.DeviceIds)
                    Set(id, s => s with { Presence = Presence.Offline, Reachable = false });
                // What a departed device subscribed to over CPNS ends with it.
                var departed = removed.DeviceIds.ToHashSet(StringComparer.Ordinal);
                DropWatchers(w => w.OverCpns && departed.Contains(w.WatcherId));
                _placements.ApplyAndTrust(removed, _link.Guard, trustPnes: true);
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                    OnSigned(inner, senderId);
                break;
            case WatchStatus watch:
                Authorize(watch, Sender, overCpns: false);
                break;
            case UnwatchStatus unwatch:
                Unwatch(unwatch.WatcherId, unwatch.Target);
                break;
            case ViewAuthorization authorization:
                OnAuthorization(authorization);
                break;
            case GetStatus query:
                Sender.Tell(Current(query.DeviceId));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            case GetStatusStats:
                Sender.Tell(_stats with { Subscriptions = _watchers.Values.Sum(w => w.Count) });
                break;
            case GetPidf query:
                Sender.Tell(new PidfDocument(query.DeviceId, Pidf.Render(Current(query.DeviceId), Context.System.Scheduler.Now)));
                break;
            case Flush:
                SendUnsent();
                break;
            case PneMoved:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case PublishStatus publish when publish.DeviceId == senderId:
                var note = publish.Note.Length > 256 ? publish.Note[..256] : publish.Note;
                Set(publish.DeviceId, s => s with { Presence = publish.Presence, Note = note, Reachable = true });
                break;
            case SubscribeStatus subscribe when subscribe.WatcherId == senderId:
                if (_watchers.Values.Sum(set => set.Count(w => w.WatcherId == senderId && w.OverCpns)) >= _settings.Status.MaxSubscriptions)
                {
                    _link.CountRefusal("TooManySubscriptions");
                    _link.Send(Sender, new WatchRejected(senderId, subscribe.Target, GroupError.InvalidRequest,
                        $"{senderId} watches {_settings.Status.MaxSubscriptions} targets already"));
                    break;
                }

                Authorize(new WatchStatus(senderId, subscribe.Target, Sender), Sender, overCpns: true);
                break;
            case UnsubscribeStatus unsubscribe when unsubscribe.WatcherId == senderId:
                Unwatch(senderId, unsubscribe.Target);
                break;
            case ReachabilityReport report when report.GatewayId == senderId && _placements.GatewayOf(report.DeviceId) == senderId:
                Set(report.DeviceId, s => s with { Reachable = report.Reachable });
                break;
            default:
                _link.CountRefusal("SenderMismatch");
                _log.Warning("status: unexpected {0} from {1}", message.GetType().Name, senderId);
                break;
        }
    }

    private EntityStatus Current(string deviceId) =>
        _statuses.TryGetValue(deviceId, out var status) ? status : new EntityStatus(deviceId, Presence.Offline, false, "");

    /// <summary>Changes a status; watchers hear of it only if it really changed.</summary>
    private void Set(string deviceId, Func<EntityStatus, EntityStatus> change)
    {
        var before = Current(deviceId);
        var after = change(before);
        if (after == before)
        {
            _stats = _stats with { Unchanged = _stats.Unchanged + 1 };
            return;
        }

        _statuses[deviceId] = after;
        if (after.Reachable != before.Reachable)
            _directory.Tell(new OffererReachability(deviceId, after.Reachable), Self); // ranking prefers reachable offerers
        var pnTarget = _placements.GatewayOf(deviceId) is { } gatewayId ? PnPrefix + gatewayId : null;
        foreach (var target in new[] { deviceId, pnTarget })
        {
            if (target is null || !_watchers.TryGetValue(target, out var watchers))
                continue;
            foreach (var watcher in watchers)
            {
                if (!_unsent.TryGetValue(watcher, out var pending))
                    _unsent[watcher] = pending = new Dictionary<string, EntityStatus>(StringComparer.Ordinal);
                pending[deviceId] = after;
            }
        }

        if (_unsent.Count > 0 && !Timers.IsTimerActive(Flush.Instance))
            Timers.StartSingleTimer(Flush.Instance, Flush.Instance, _settings.Status.Coalesce);
    }

    /// <summary>After the coalescing window: one notification per watcher and entity, the latest state, if it differs.</summary>
    private void SendUnsent()
    {
        foreach (var (watcher, pending) in _unsent)
        {
            foreach (var (deviceId, status) in pending)
            {
                if (_lastSent.TryGetValue((watcher, deviceId), out var sent) && sent == status)
                {
                    _stats = _stats with { Suppressed = _stats.Suppressed + 1 };
                    continue;
                }

                _lastSent[(watcher, deviceId)] = status;
                _stats = _stats with { Sent = _stats.Sent + 1 };
                Answer(watcher.Subscriber, new StatusChanged(watcher.WatcherId, status), watcher.OverCpns);
            }
        }

        _unsent.Clear();
    }

    private IReadOnlyList<string> Members(string target) =>
        target.StartsWith(PnPrefix, StringComparison.Ordinal)
            ? [target[PnPrefix.Length..], .. _placements.PnesOf(target[PnPrefix.Length..])]
            : [target];

    /// <summary>
    /// An entity may watch itself and its own PN; anything else needs the group ACLs to give it at least View on a
    /// group the watched entities are in (the SMF decides).
    /// </summary>
    private void Answer(IActorRef to, object message, bool overCpns)
    {
        if (overCpns)
            _link.Send(to, message);
        else
            to.Tell(message);
    }

    private void Unwatch(string watcherId, string target) => DropWatchers(w => w.WatcherId == watcherId, target);

    private void DropWatchers(Func<Watcher, bool> which, string? target = null)
    {
        foreach (var (watched, set) in _watchers)
        {
            if (target is null || watched == target)
                set.RemoveWhere(w => which(w));
        }

        var remaining = _watchers.Values.SelectMany(set => set).ToHashSet();
        foreach (var key in _lastSent.Keys.Where(k => !remaining.Contains(k.Item1)).ToList())
            _lastSent.Remove(key);
        foreach (var gone in _unsent.Keys.Where(w => !remaining.Contains(w)).ToList())
            _unsent.Remove(gone);
    }

    private void Authorize(WatchStatus watch, IActorRef asker, bool overCpns)
    {
        var members = Members(watch.Target);
        var ownPn = watch.Target.StartsWith(PnPrefix, StringComparison.Ordinal) &&
                    _placements.GatewayOf(watch.WatcherId) == watch.Target[PnPrefix.Length..];
        if (watch.WatcherId == Operator.Id || watch.Target == watch.WatcherId || ownPn)
        {
            Accept(watch, asker, overCpns);
            return;
        }

        var requestId = ++_nextRequestId;
        _authorizing[requestId] = (watch, asker, overCpns);
        _smf.Tell(new AuthorizeView(requestId, watch.WatcherId, members), Self);
    }

    private void OnAuthorization(ViewAuthorization authorization)
    {
        if (!_authorizing.Remove(authorization.RequestId, out var pending))
            return;
        if (authorization.Allowed)
        {
            Accept(pending.Watch, pending.Asker, pending.OverCpns);
            return;
        }

        _log.Info("status: {0} may not watch {1}: {2}", pending.Watch.WatcherId, pending.Watch.Target, authorization.Detail);
        Answer(pending.Asker, new WatchRejected(pending.Watch.WatcherId, pending.Watch.Target, GroupError.NotAuthorized,
            authorization.Detail), pending.OverCpns);
    }

    private void Accept(WatchStatus watch, IActorRef asker, bool overCpns)
    {
        if (!_watchers.TryGetValue(watch.Target, out var set))
            _watchers[watch.Target] = set = new HashSet<Watcher>();
        var watcher = new Watcher(watch.WatcherId, watch.Subscriber, overCpns);
        set.Add(watcher);
        var current = Members(watch.Target).Select(Current).ToList();
        foreach (var status in current)
            _lastSent[(watcher, status.DeviceId)] = status;
        Answer(asker, new WatchAccepted(watch.WatcherId, watch.Target, current), overCpns);
    }
}
