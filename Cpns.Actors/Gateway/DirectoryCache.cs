using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's directory (<c>directory-cache</c>). For its PNEs it answers a search from its cache while the answer is
/// fresh (the TTL), and otherwise asks the server on the PNE's behalf. In a distributed directory it is also this
/// PN's part of the Metadata Directory: it keeps the descriptions the PN's offerers published (durable), and answers
/// the server's fanned-out searches with its ranked matches.
/// </summary>
public sealed class DirectoryCache : CpnsPersistentActor, IWithTimers
{
    private sealed record Sweep : INoSerializationVerificationNeeded
    {
        public static readonly Sweep Instance = new();
    }

    private sealed record Cached(SearchResult Result, long ExpiresAtMs);

    private readonly EntityIdentity _identity;
    private readonly SecureLink _link;
    private readonly DirectoryIndex _shard = new();
    private readonly PnView _pn = new();
    private readonly Dictionary<string, Cached> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (string Key, SearchServices Query, IActorRef ReplyTo)> _asked = new();
    private long _nextRequestId;

    public DirectoryCache(EntityIdentity identity, CpnsSettings settings) : base(settings)
    {
        _identity = identity;
        _link = new SecureLink(Context, identity, settings, Log);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<DirectoryCache>(identity, settings);

    public override string PersistenceId => $"directory-{_identity.DeviceId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override object CreateSnapshot() => new DirectorySnapshot(_shard.All);

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: DirectorySnapshot snapshot }:
                _shard.Apply(snapshot);
                break;
            case ICpnsEvent @event:
                _shard.Apply(@event);
                break;
            case RecoveryCompleted:
                Timers.StartPeriodicTimer(Sweep.Instance, Sweep.Instance, Settings.CleanerInterval);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ServerAttached or PneAttached or PneDetached or PneReachability:
                _pn.Apply(message, _link.Guard);
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                {
                    if (_pn.IsFromServer(senderId))
                        OnFromServer(inner);
                    else
                        OnFromPne(inner, senderId);
                }

                break;
            case Sweep:
                var expired = _shard.Expired(NowMs, Settings.CleanerBatch);
                if (expired.Count > 0)
                    PersistAll(expired.Select(id => new ServiceRemovedEvent(id, Expired: true)), e => _shard.Apply(e));
                foreach (var stale in _cache.Where(kv => kv.Value.ExpiresAtMs <= NowMs).Select(kv => kv.Key).ToList())
                    _cache.Remove(stale);
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnFromPne(object message, string senderId)
    {
        if (message is not SearchServices query || query.ConsumerId != senderId || !_pn.IsAttached(senderId))
        {
            Log.Warning("{0}: directory: unexpected {1} from {2}", _identity.DeviceId, message.GetType().Name, senderId);
            return;
        }

        var key = CacheKey(query);
        if (_cache.TryGetValue(key, out var cached) && cached.ExpiresAtMs > NowMs)
        {
            _link.Send(Sender, cached.Result with { FromCache = true, RequestId = query.RequestId });
            return;
        }

        if (_pn.Server is not { } server)
        {
            _link.Send(Sender, new SearchRejected(query.ConsumerId, DirectoryError.Unavailable, "the server is not reachable now", query.RequestId));
            return;
        }

        var requestId = ++_nextRequestId;
        _asked[requestId] = (key, query, Sender);
        _link.Send(server.Directory, query with { RequestId = requestId });
    }

    private void OnFromServer(object message)
    {
        switch (message)
        {
            case SearchResult result when _asked.Remove(result.RequestId, out var asked):
                _cache[asked.Key] = new Cached(result, NowMs + (long)Settings.DirectoryCacheTtl.TotalMilliseconds);
                _link.Send(asked.ReplyTo, result with { RequestId = asked.Query.RequestId });
                break;
            case SearchRejected rejected when _asked.Remove(rejected.RequestId, out var asked):
                _link.Send(asked.ReplyTo, rejected with { RequestId = asked.Query.RequestId });
                break;
            case ShardStore store:
                Persist(new ServiceStoredEvent(store.Description, store.Version, store.ExpiresAtMs), e =>
                {
                    _shard.Apply(e);
                    _link.Send(Sender, new ShardStored(e.Description.ServiceId, e.Version, e.ExpiresAtMs));
                    SnapshotIfDue();
                });
                break;
            case ShardRemove remove:
                var existing = _shard.Get(remove.ServiceId);
                if (existing is null || existing.OffererId != remove.OffererId)
                {
                    _link.Send(Sender, new ShardRemoved(remove.ServiceId, Found: false));
                    return;
                }

                Persist(new ServiceRemovedEvent(remove.ServiceId, Expired: false), e =>
                {
                    _shard.Apply(e);
                    _link.Send(Sender, new ShardRemoved(e.ServiceId, Found: true));
                });
                break;
            case ShardSearch search:
                string? GatewayOf(string offerer) => _pn.IsAttached(offerer) || offerer == _identity.DeviceId ? _identity.DeviceId : null;
                _link.Send(Sender, new ShardResults(search.RequestId, _identity.DeviceId,
                    _shard.Search(search.Query, search.Context, NowMs, GatewayOf, id => !_pn.IsReachable(id))));
                break;
            default:
                Log.Warning("{0}: directory: unexpected {1} from the server", _identity.DeviceId, message.GetType().Name);
                break;
        }
    }

    private static string CacheKey(SearchServices query) =>
        string.Join('\u001f', [query.ConsumerId, string.Join(',', query.Keywords.Select(k => k.ToLowerInvariant()).Order()),
            string.Join(',', query.Filters.OrderBy(f => f.Key).Select(f => f.Key + "=" + f.Value)), query.Offset.ToString(),
            query.Limit.ToString()]);
}
