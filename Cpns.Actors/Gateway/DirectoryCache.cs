using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Common;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's directory (<c>directory-cache</c>). For its PNEs it answers a search from its cache while the answer is
/// fresh (the TTL), and otherwise asks the server on the PNE's behalf. In a distributed directory it is also this
/// PN's part of the Metadata Directory: it keeps the descriptions the PN's offerers published (durable), answers the
/// server's fanned-out searches with its ranked matches, and searches its peers itself (seed Appendix A.1.3): a PNE's
/// search goes to every PN GW the server named as a peer, under a search grant the server signed for that consumer
/// (cached for its lifetime, so searches go on while the server is away), and each peer answers only what the grant lets
/// the consumer see.
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

    private sealed record PeerFanOut(SearchServices Query, IActorRef ReplyTo, string CacheKey, SearchGrant Grant, HashSet<string> WaitingFor,
        List<ServiceHit> Hits);

    private sealed record PeerFanOutDue(long RequestId) : INoSerializationVerificationNeeded;

    private sealed record GrantDue(string ConsumerId) : INoSerializationVerificationNeeded;

    private readonly Dictionary<string, DirectoryPeer> _peers = new(StringComparer.Ordinal);
    private long _peersVersion;
    private readonly Dictionary<string, SearchGrant> _grants = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(SearchServices Query, IActorRef ReplyTo)>> _awaitingGrant = new(StringComparer.Ordinal);
    private readonly Dictionary<long, PeerFanOut> _peerFanOuts = new();

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
                Timers.StartPeriodicTimer(Sweep.Instance, Sweep.Instance, Settings.Registration.CleanerInterval);
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
                    else if (_peers.ContainsKey(senderId))
                        OnFromPeer(inner, senderId);
                    else
                        OnFromPne(inner, senderId);
                }

                break;
            case PeerFanOutDue due when _peerFanOuts.TryGetValue(due.RequestId, out var late):
                Log.Warning("{0}: directory: {1} peers did not answer a search in time", _identity.DeviceId, late.WaitingFor.Count);
                FinishPeerSearch(due.RequestId);
                break;
            case PeerFanOutDue:
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            case GetDirectoryPeers:
                Sender.Tell(new DirectoryPeers(_peersVersion, _peers.Values.OrderBy(p => p.GatewayId, StringComparer.Ordinal).ToList()));
                break;
            case GrantDue due:
                RefuseAwaitingGrant(due.ConsumerId, DirectoryError.Unavailable, "the server did not authorize the search in time");
                break;
            case Sweep:
                var expired = _shard.Expired(NowMs, Settings.Registration.CleanerBatch);
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

        if (Settings.Directory.Distributed && _peers.Count > 0)
        {
            SearchPeers(query, Sender);
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
                _cache[asked.Key] = new Cached(result, NowMs + (long)Settings.Directory.CacheTtl.TotalMilliseconds);
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
            case DirectoryPeers peers when peers.Version > _peersVersion:
                _peersVersion = peers.Version;
                foreach (var gone in _peers.Keys.Where(id => peers.Peers.All(p => p.GatewayId != id)).ToList())
                {
                    _peers.Remove(gone);
                    _link.Guard.Forget(gone);
                }

                foreach (var peer in peers.Peers.Where(p => p.GatewayId != _identity.DeviceId))
                {
                    _peers[peer.GatewayId] = peer;
                    _link.Guard.Trust(peer.GatewayId, peer.Keys.Signing);
                }

                break;
            case DirectoryPeers:
                break; // an older list than the one held
            case SearchGrant grant when grant.GatewayId == _identity.DeviceId && grant.VerifiedBy(_pn.Server!.ServerId, _pn.Server.Keys.Signing):
                _grants[grant.ConsumerId] = grant;
                Timers.Cancel(("grant", grant.ConsumerId));
                if (_awaitingGrant.Remove(grant.ConsumerId, out var waiting))
                    foreach (var (query, replyTo) in waiting)
                        FanOutToPeers(query, replyTo, grant);
                break;
            case SearchGrantRefused refused:
                RefuseAwaitingGrant(refused.ConsumerId, refused.Error, refused.Detail);
                break;
            case ShardSearch search:
                _link.Send(Sender, new ShardResults(search.RequestId, _identity.DeviceId,
                    _shard.Search(search.Query, search.Context, NowMs, ShardGatewayOf, id => !_pn.IsReachable(id))));
                break;
            default:
                Log.Warning("{0}: directory: unexpected {1} from the server", _identity.DeviceId, message.GetType().Name);
                break;
        }
    }

    // ---- Peer-to-peer search (distributed directory) ----

    private string? ShardGatewayOf(string offerer) => _pn.IsAttached(offerer) || offerer == _identity.DeviceId ? _identity.DeviceId : null;

    /// <summary>This PN's matches that the grant's consumer may see.</summary>
    private IReadOnlyList<ServiceHit> VisibleHits(SearchServices query, SearchContext context, SearchGrant grant) =>
        _shard.Search(query, context, NowMs, ShardGatewayOf, id => !_pn.IsReachable(id))
            .Where(h => DirectoryIndex.Visible(h.Description, grant.ConsumerId, grant.Privileges)).ToList();

    private void SearchPeers(SearchServices query, IActorRef replyTo)
    {
        if (DirectoryIndex.QueryProblem(query, Settings.Directory.MaxPage) is { } invalid)
        {
            _link.Send(replyTo, new SearchRejected(query.ConsumerId, DirectoryError.InvalidQuery, invalid, query.RequestId));
            return;
        }

        if (_grants.TryGetValue(query.ConsumerId, out var grant) && grant.ExpiresAtMs > NowMs)
        {
            FanOutToPeers(query, replyTo, grant);
            return;
        }

        if (_pn.Server is not { } server)
        {
            _link.Send(replyTo, new SearchRejected(query.ConsumerId, DirectoryError.Unavailable,
                "no search grant for this consumer, and the server is not reachable now", query.RequestId));
            return;
        }

        if (!_awaitingGrant.TryGetValue(query.ConsumerId, out var waiting))
        {
            _awaitingGrant[query.ConsumerId] = waiting = new List<(SearchServices, IActorRef)>();
            _link.Send(server.Directory, new SearchGrantRequest(query.ConsumerId));
            Timers.StartSingleTimer(("grant", query.ConsumerId), new GrantDue(query.ConsumerId), Settings.Directory.FanOutTimeout);
        }

        waiting.Add((query, replyTo));
    }

    private void RefuseAwaitingGrant(string consumerId, DirectoryError error, string detail)
    {
        if (!_awaitingGrant.Remove(consumerId, out var waiting))
            return;
        Timers.Cancel(("grant", consumerId));
        foreach (var (query, replyTo) in waiting)
            _link.Send(replyTo, new SearchRejected(consumerId, error, detail, query.RequestId));
    }

    private void FanOutToPeers(SearchServices query, IActorRef replyTo, SearchGrant grant)
    {
        var requestId = ++_nextRequestId;
        var context = new SearchContext(query.ConsumerId, _identity.DeviceId);
        var fanOut = new PeerFanOut(query, replyTo, CacheKey(query), grant, _peers.Keys.ToHashSet(StringComparer.Ordinal),
            VisibleHits(query, context, grant).ToList());
        _peerFanOuts[requestId] = fanOut;
        var peerQuery = query with { Offset = 0, Limit = query.Offset + query.Limit }; // each peer's best, enough for the page
        foreach (var peer in _peers.Values)
            _link.Send(peer.DirectoryCache, new PeerSearch(requestId, peerQuery, context, grant));
        Timers.StartSingleTimer(("peer-search", requestId), new PeerFanOutDue(requestId), Settings.Directory.FanOutTimeout);
    }

    private void OnFromPeer(object message, string peerId)
    {
        switch (message)
        {
            case PeerSearch search:
                var grant = search.Grant;
                var problem = _pn.Server is not { } server ? "this PN GW knows no server to check the grant against"
                    : !grant.VerifiedBy(server.ServerId, server.Keys.Signing) ? "the grant is not the server's"
                    : grant.GatewayId != peerId || grant.ConsumerId != search.Query.ConsumerId ? $"the grant is not for {peerId} searching as {search.Query.ConsumerId}"
                    : grant.ExpiresAtMs <= NowMs ? "the grant has expired"
                    : null;
                if (problem is not null)
                {
                    _link.CountRefusal("SearchGrantRefused");
                    Log.Warning("{0}: directory: refused a search from {1}: {2}", _identity.DeviceId, peerId, problem);
                    _link.Send(Sender, new ShardResults(search.RequestId, _identity.DeviceId, []));
                    return;
                }

                _link.Send(Sender, new ShardResults(search.RequestId, _identity.DeviceId, VisibleHits(search.Query, search.Context, grant)));
                break;
            case ShardResults results when _peerFanOuts.TryGetValue(results.RequestId, out var fanOut) && fanOut.WaitingFor.Remove(peerId):
                // What the peer may show is what the grant allows: checked again here, whatever the peer sent.
                fanOut.Hits.AddRange(results.Hits.Where(h => DirectoryIndex.Visible(h.Description, fanOut.Grant.ConsumerId, fanOut.Grant.Privileges)));
                if (fanOut.WaitingFor.Count == 0)
                    FinishPeerSearch(results.RequestId);
                break;
            case ShardResults:
                break; // late, or for a search already answered
            default:
                Log.Warning("{0}: directory: unexpected {1} from peer {2}", _identity.DeviceId, message.GetType().Name, peerId);
                break;
        }
    }

    private void FinishPeerSearch(long requestId)
    {
        if (!_peerFanOuts.Remove(requestId, out var fanOut))
            return;
        Timers.Cancel(("peer-search", requestId));
        var page = DirectoryIndex.Page(DirectoryIndex.Rank(fanOut.Hits.DistinctBy(h => h.ServiceId)), fanOut.Query, fromCache: false);
        _cache[fanOut.CacheKey] = new Cached(page, NowMs + (long)Settings.Directory.CacheTtl.TotalMilliseconds);
        _link.Send(fanOut.ReplyTo, page with { RequestId = fanOut.Query.RequestId });
    }

    private static string CacheKey(SearchServices query) =>
        string.Join('\u001f', [query.ConsumerId, string.Join(',', query.Keywords.Select(k => k.ToLowerInvariant()).Order()),
            string.Join(',', query.Filters.OrderBy(f => f.Key).Select(f => f.Key + "=" + f.Value)), query.Offset.ToString(),
            query.Limit.ToString()]);
}
