using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's Service Publication &amp; Discovery function (<c>directory</c>), the Metadata Directory.
/// <para>Central mode: every description is held here, durable (event-sourced), and searched here.</para>
/// <para>Distributed mode (seed Appendix A.1.3): each description lives at the PN GW of its offerer's PN; a search fans
/// out over all PN GWs and the ranked answers are merged here. Descriptions of external Application/Content Entities
/// (no PN) stay here. Either way authentication and authorization stay on the server: an offerer may bind a service
/// only to a group it manages, and a consumer sees only what its group privileges allow.</para>
/// It also chooses how a service is performed for a consumer, from the consumer's device capabilities.
/// </summary>
public sealed class ServerDirectory : CpnsPersistentActor, IWithTimers
{
    public const string ExternalPrefix = "ace:";

    private sealed record Sweep : INoSerializationVerificationNeeded
    {
        public static readonly Sweep Instance = new();
    }

    /// <summary>An answer from another function (the SMF, capabilities) arriving back, to continue a request.</summary>

    private sealed record FanOutDue(long RequestId) : INoSerializationVerificationNeeded;

    private sealed class FanOut(Action<IReadOnlyList<ServiceHit>> done, HashSet<string> waitingFor, List<ServiceHit> hits)
    {
        public Action<IReadOnlyList<ServiceHit>> Done { get; } = done;
        public HashSet<string> WaitingFor { get; } = waitingFor;
        public List<ServiceHit> Hits { get; } = hits;
    }

    private TimeSpan AskTimeout => Settings.Timeouts.Ask;

    private readonly SecureLink _link;
    private readonly IActorRef _smf;
    private readonly IActorRef _capabilities;
    private readonly DirectoryIndex _index = new();
    private readonly Placements _placements = new();
    private readonly HashSet<string> _unreachable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _versions = new(StringComparer.Ordinal);
    private readonly Dictionary<long, FanOut> _fanOuts = new();
    private readonly Dictionary<(string ServiceId, long Version), (IActorRef ReplyTo, bool Sealed)> _shardWrites = new();
    private readonly Dictionary<string, Queue<(IActorRef ReplyTo, bool Sealed)>> _shardRemovals = new(StringComparer.Ordinal);
    private long _nextRequestId;
    private readonly EntityIdentity _identity;
    private long _peersVersion;

    private sealed record PublishPeers : INoSerializationVerificationNeeded
    {
        public static readonly PublishPeers Instance = new();
    }

    public ServerDirectory(EntityIdentity identity, IActorRef smf, IActorRef capabilities, CpnsSettings settings) : base(settings)
    {
        _identity = identity;
        _link = new SecureLink(Context, identity, settings, Log);
        _smf = smf;
        _capabilities = capabilities;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, IActorRef smf, IActorRef capabilities, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerDirectory>(identity, smf, capabilities, settings);

    public override string PersistenceId => $"directory-{Settings.ServerId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override object CreateSnapshot() => new DirectorySnapshot(_index.All);

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: DirectorySnapshot snapshot }:
                foreach (var stored in snapshot.Services)
                    Apply(stored); // each one also sets the service's highest version
                break;
            case ICpnsEvent @event:
                Apply(@event);
                break;
            case RecoveryCompleted:
                Timers.StartPeriodicTimer(Sweep.Instance, Sweep.Instance, Settings.Registration.CleanerInterval);
                break;
        }
    }

    private void Apply(ICpnsEvent @event)
    {
        _index.Apply(@event);
        if (@event is ServiceStoredEvent stored)
            _versions[stored.Description.ServiceId] = Math.Max(_versions.GetValueOrDefault(stored.Description.ServiceId), stored.Version);
    }

    protected override void OnCommand(object message)
    {
        if (_placements.ApplyAndTrust(message, _link.Guard, trustPnes: true))
        {
            // The PN GWs of a distributed directory search each other: each is told who its peers are, changes coalesced.
            if (Settings.Directory.Distributed && message is GatewayPlaced or EntitiesRemoved && !Timers.IsTimerActive(PublishPeers.Instance))
                Timers.StartSingleTimer(PublishPeers.Instance, PublishPeers.Instance, Settings.Directory.PeerPublishWindow);
            return;
        }

        switch (message)
        {
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                    OnSigned(inner, senderId);
                break;
            case LocalRequest { Request: PublishService or WithdrawService or SearchServices or NegotiateService } local:
                // An operator, or an Application/Content Entity on CPNS-5, through this node's API.
                Handle(local.Request, requester: null, Sender, sealedReply: false);
                break;
            case GetOfferedServices query:
                Sender.Tell(new OfferedServices(query.OffererId, _index.All
                    .Where(e => e.Description.OffererId == query.OffererId)
                    .Select(e => new OfferedService(e.Description, e.Version, e.ExpiresAtMs))
                    .OrderBy(e => e.Description.ServiceId, StringComparer.Ordinal)
                    .ToList()));
                break;
            case OffererReachability reachability:
                if (reachability.Reachable)
                    _unreachable.Remove(reachability.DeviceId);
                else
                    _unreachable.Add(reachability.DeviceId);
                break;
            case PneMoved:
                break;
            case Continuation next:
                next.Then();
                break;
            case FanOutDue due:
                if (_fanOuts.Remove(due.RequestId, out var late))
                {
                    Log.Warning("directory: {0} PN GWs did not answer a search in time", late.WaitingFor.Count);
                    late.Done(late.Hits);
                }

                break;
            case Sweep:
                ExpireDescriptions();
                break;
            case PublishPeers:
                // Versions grow across restarts of this server, so a PN GW never keeps an older list for a newer one.
                _peersVersion = Math.Max(_peersVersion + 1, NowMs);
                var peers = new DirectoryPeers(_peersVersion, _placements.GatewayIds.Order(StringComparer.Ordinal)
                    .Select(id => _placements.Gateway(id)!)
                    .Select(g => new DirectoryPeer(g.GatewayId, g.Keys, g.Endpoints.DirectoryCache)).ToList());
                foreach (var peer in peers.Peers)
                    _link.Send(peer.DirectoryCache, peers);
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case PublishService or WithdrawService or SearchServices or NegotiateService:
                Handle(message, senderId, Sender, sealedReply: true);
                break;
            case SearchGrantRequest request:
                Grant(request, senderId, Sender);
                break;
            case ShardResults results when _fanOuts.TryGetValue(results.RequestId, out var fanOut) && fanOut.WaitingFor.Remove(senderId):
                fanOut.Hits.AddRange(results.Hits);
                if (fanOut.WaitingFor.Count == 0)
                {
                    _fanOuts.Remove(results.RequestId);
                    Timers.Cancel(("fan-out", results.RequestId));
                    fanOut.Done(fanOut.Hits);
                }

                break;
            case ShardStored stored when _shardWrites.Remove((stored.ServiceId, stored.Version), out var writer):
                Reply(writer.ReplyTo, writer.Sealed, new ServicePublished(stored.ServiceId, stored.Version, stored.ExpiresAtMs));
                break;
            case ShardRemoved removed when _shardRemovals.TryGetValue(removed.ServiceId, out var removers) && removers.Count > 0:
                var remover = removers.Dequeue();
                Reply(remover.ReplyTo, remover.Sealed, removed.Found
                    ? new ServiceWithdrawn(removed.ServiceId)
                    : new DirectoryRejected(removed.ServiceId, DirectoryError.UnknownService, $"no service {removed.ServiceId}"));
                break;
            default:
                Log.Warning("directory: unexpected {0} from {1}", message.GetType().Name, senderId);
                break;
        }
    }

    private void Reply(IActorRef replyTo, bool sealedReply, object answer)
    {
        if (sealedReply)
            _link.Send(replyTo, answer);
        else
            replyTo.Tell(answer);
    }

    /// <summary>
    /// <paramref name="requester"/> is the entity that signed the request, or null for a local caller (operator, ACE),
    /// whom the request's own ids are trusted for.
    /// </summary>
    private void Handle(object message, string? requester, IActorRef replyTo, bool sealedReply)
    {
        switch (message)
        {
            case PublishService publish:
                Publish(publish.Description, requester, replyTo, sealedReply);
                break;
            case WithdrawService withdraw:
                Withdraw(withdraw, requester, replyTo, sealedReply);
                break;
            case SearchServices search:
                Search(search, requester, replyTo, sealedReply);
                break;
            case NegotiateService negotiate:
                Negotiate(negotiate, requester, replyTo, sealedReply);
                break;
        }
    }

    // ---- Publication ----

    private void Publish(ServiceDescription description, string? requester, IActorRef replyTo, bool sealedReply)
    {
        void Refuse(DirectoryError error, string detail)
        {
            Log.Info("directory: publication of {0} refused: {1} ({2})", description.ServiceId, error, detail);
            Reply(replyTo, sealedReply, new DirectoryRejected(description.ServiceId, error, detail));
        }

        if (DirectoryIndex.Validate(description) is { } problem)
        {
            Refuse(DirectoryError.InvalidDescription, problem);
            return;
        }

        var external = description.OffererId.StartsWith(ExternalPrefix, StringComparison.Ordinal);
        if (requester is not null && requester != description.OffererId)
        {
            Refuse(DirectoryError.NotOfferer, $"{requester} cannot publish for {description.OffererId}");
            return;
        }

        if (!external && _placements.GatewayOf(description.OffererId) is null)
        {
            Refuse(DirectoryError.NotAuthorized, $"{description.OffererId} is not a registered entity");
            return;
        }

        if (_placements.Gateway(description.OffererId) is { Kind: not EntityKind.Both })
        {
            Refuse(DirectoryError.NotAuthorized, $"{description.OffererId} is a PN GW only: services are offered by PNEs and BOTH devices");
            return;
        }

        if (_index.Get(description.ServiceId) is { } existing && existing.OffererId != description.OffererId)
        {
            Refuse(DirectoryError.NotOfferer, $"{description.ServiceId} is offered by {existing.OffererId}");
            return;
        }

        WithPrivileges(description.OffererId, privileges =>
        {
            if (requester is not null && description.GroupId is not null &&
                privileges.GetValueOrDefault(description.GroupId, Privilege.None) < Privilege.Manage)
            {
                Refuse(DirectoryError.NotAuthorized, $"{description.OffererId} does not manage group {description.GroupId}");
                return;
            }

            var lifetime = description.LifetimeSeconds > 0
                ? Math.Min(description.LifetimeSeconds, (int)Settings.Registration.MaxLifetime.TotalSeconds)
                : (int)Settings.Directory.DefaultLifetime.TotalSeconds;
            var stored = new ServiceStoredEvent(description.Detached() with { LifetimeSeconds = lifetime },
                _versions.GetValueOrDefault(description.ServiceId) + 1, NowMs + lifetime * 1000L);
            _versions[description.ServiceId] = stored.Version;

            if (Settings.Directory.Distributed && !external)
            {
                var gateway = _placements.Gateway(_placements.GatewayOf(description.OffererId)!)!;
                _shardWrites[(description.ServiceId, stored.Version)] = (replyTo, sealedReply);
                _link.Send(gateway.Endpoints.DirectoryCache, new ShardStore(stored.Description, stored.Version, stored.ExpiresAtMs));
                return;
            }

            Persist(stored, e =>
            {
                Apply(e);
                Reply(replyTo, sealedReply, new ServicePublished(e.Description.ServiceId, e.Version, e.ExpiresAtMs));
                SnapshotIfDue();
            });
        });
    }

    private void Withdraw(WithdrawService withdraw, string? requester, IActorRef replyTo, bool sealedReply)
    {
        if (requester is not null && requester != withdraw.OffererId)
        {
            Reply(replyTo, sealedReply, new DirectoryRejected(withdraw.ServiceId, DirectoryError.NotOfferer,
                $"{requester} cannot withdraw for {withdraw.OffererId}"));
            return;
        }

        var external = withdraw.OffererId.StartsWith(ExternalPrefix, StringComparison.Ordinal);
        if (Settings.Directory.Distributed && !external)
        {
            if (_placements.GatewayOf(withdraw.OffererId) is not { } gatewayId)
            {
                Reply(replyTo, sealedReply, new DirectoryRejected(withdraw.ServiceId, DirectoryError.UnknownService,
                    $"{withdraw.OffererId} is not registered"));
                return;
            }

            if (!_shardRemovals.TryGetValue(withdraw.ServiceId, out var removers))
                _shardRemovals[withdraw.ServiceId] = removers = new Queue<(IActorRef, bool)>();
            removers.Enqueue((replyTo, sealedReply));
            _link.Send(_placements.Gateway(gatewayId)!.Endpoints.DirectoryCache, new ShardRemove(withdraw.ServiceId, withdraw.OffererId));
            return;
        }

        var existing = _index.Get(withdraw.ServiceId);
        if (existing is null || existing.OffererId != withdraw.OffererId)
        {
            Reply(replyTo, sealedReply, existing is null
                ? new DirectoryRejected(withdraw.ServiceId, DirectoryError.UnknownService, $"no service {withdraw.ServiceId}")
                : new DirectoryRejected(withdraw.ServiceId, DirectoryError.NotOfferer, $"{withdraw.ServiceId} is offered by {existing.OffererId}"));
            return;
        }

        Persist(new ServiceRemovedEvent(withdraw.ServiceId, Expired: false), e =>
        {
            Apply(e);
            Reply(replyTo, sealedReply, new ServiceWithdrawn(e.ServiceId));
            SnapshotIfDue();
        });
    }

    private void ExpireDescriptions()
    {
        var expired = _index.Expired(NowMs, Settings.Registration.CleanerBatch);
        if (expired.Count == 0)
            return;
        PersistAll(expired.Select(id => new ServiceRemovedEvent(id, Expired: true)), e => Apply(e));
        Log.Info("directory: {0} descriptions expired", expired.Count);
    }

    // ---- Discovery ----

    private void Search(SearchServices query, string? requester, IActorRef replyTo, bool sealedReply)
    {
        void Refuse(DirectoryError error, string detail)
        {
            CpnsMetrics.DirectorySearches.Add(1, CpnsMetrics.Tag("outcome", "refused"));
            Reply(replyTo, sealedReply, new SearchRejected(query.ConsumerId, error, detail, query.RequestId));
        }

        if (DirectoryIndex.QueryProblem(query, Settings.Directory.MaxPage) is { } invalid)
        {
            Refuse(DirectoryError.InvalidQuery, invalid);
            return;
        }

        // A consumer searches for itself, or its PN GW searches for it (a PN GW answering from its cache asks for its PNEs).
        if (requester is not null && requester != query.ConsumerId && _placements.GatewayOf(query.ConsumerId) != requester)
        {
            Refuse(DirectoryError.NotAuthorized, $"{requester} cannot search as {query.ConsumerId}");
            return;
        }

        // The operator searches through the node-local API only (no requester): from an entity, the name is just a name.
        var byOperator = requester is null && query.ConsumerId == Operator.Id;
        if (!byOperator && _placements.GatewayOf(query.ConsumerId) is null &&
            !query.ConsumerId.StartsWith(ExternalPrefix, StringComparison.Ordinal))
        {
            Refuse(DirectoryError.NotAuthorized, $"{query.ConsumerId} is not a registered entity");
            return;
        }

        Gather(query, hits => WithPrivileges(query.ConsumerId, privileges =>
        {
            var visible = DirectoryIndex.Rank(hits.Where(h => byOperator || DirectoryIndex.Visible(h.Description, query.ConsumerId, privileges)));
            CpnsMetrics.DirectorySearches.Add(1, CpnsMetrics.Tag("outcome", "answered"));
            Reply(replyTo, sealedReply, DirectoryIndex.Page(visible, query, fromCache: false));
        }));
    }

    /// <summary>All hits of a query: from this index, and in distributed mode from every PN GW's part too.</summary>
    private void Gather(SearchServices query, Action<IReadOnlyList<ServiceHit>> done)
    {
        var context = new SearchContext(query.ConsumerId, _placements.GatewayOf(query.ConsumerId));
        var own = _index.Search(query, context, NowMs, _placements.GatewayOf, _unreachable.Contains);
        var gateways = Settings.Directory.Distributed ? _placements.GatewayIds.ToList() : [];
        if (gateways.Count == 0)
        {
            done(own);
            return;
        }

        var requestId = ++_nextRequestId;
        _fanOuts[requestId] = new FanOut(done, gateways.ToHashSet(StringComparer.Ordinal), own.ToList());
        foreach (var gatewayId in gateways)
            _link.Send(_placements.Gateway(gatewayId)!.Endpoints.DirectoryCache, new ShardSearch(requestId, query, context));
        Timers.StartSingleTimer(("fan-out", requestId), new FanOutDue(requestId), Settings.Directory.FanOutTimeout);
    }

    /// <summary>
    /// A PN GW asks to search its peers for one of its PNEs (or for itself): the server authorizes it with the
    /// consumer's privileges, signed, for <c>cpns.directory.grant-lifetime</c>.
    /// </summary>
    private void Grant(SearchGrantRequest request, string gatewayId, IActorRef replyTo)
    {
        if (!Settings.Directory.Distributed || !_placements.IsGateway(gatewayId) || _placements.GatewayOf(request.ConsumerId) != gatewayId)
        {
            Log.Info("directory: search grant for {0} refused to {1}", request.ConsumerId, gatewayId);
            _link.Send(replyTo, new SearchGrantRefused(request.ConsumerId, DirectoryError.NotAuthorized,
                Settings.Directory.Distributed ? $"{request.ConsumerId} is not served by {gatewayId}" : "the directory is central"));
            return;
        }

        WithPrivileges(request.ConsumerId, privileges => _link.Send(replyTo, SearchGrant.Sign(_identity, request.ConsumerId, gatewayId,
            privileges, NowMs + (long)Settings.Directory.GrantLifetime.TotalMilliseconds)));
    }

    private void WithPrivileges(string subjectId, Action<IReadOnlyDictionary<string, Privilege>> then)
    {
        _smf.Ask<Privileges>(new GetPrivileges(subjectId), AskTimeout)
            .ContinueOn(Self, privileges => then(privileges.ByGroup), _ => then(new Dictionary<string, Privilege>()));
    }

    // ---- Service management: the way a service is performed ----

    /// <summary>
    /// Picks, for this consumer, the first codec of the service's list that the consumer's device supports, at the
    /// highest bitrate both sides allow; refuses with a reason when none fits.
    /// </summary>
    private void Negotiate(NegotiateService negotiate, string? requester, IActorRef replyTo, bool sealedReply)
    {
        void Refuse(RefusalReason reason, string detail) =>
            Reply(replyTo, sealedReply, new ServiceRefused(negotiate.ServiceId, negotiate.ConsumerId, reason, detail));

        if (requester is not null && requester != negotiate.ConsumerId)
        {
            Refuse(RefusalReason.NotAuthorized, $"{requester} cannot negotiate for {negotiate.ConsumerId}");
            return;
        }

        var query = new SearchServices(negotiate.ConsumerId, [], new Dictionary<string, string> { ["id"] = negotiate.ServiceId }, 0, 1);
        Gather(query, hits => WithPrivileges(negotiate.ConsumerId, privileges =>
        {
            if (hits.FirstOrDefault()?.Description is not { } service)
            {
                Refuse(RefusalReason.UnknownService, $"no service {negotiate.ServiceId}");
                return;
            }

            if (!(requester is null && negotiate.ConsumerId == Operator.Id) &&
                !DirectoryIndex.Visible(service, negotiate.ConsumerId, privileges))
            {
                Refuse(RefusalReason.NotAuthorized, $"{negotiate.ConsumerId} may not use {negotiate.ServiceId}");
                return;
            }

            void Unknown() => Refuse(RefusalReason.UnknownConsumer, $"the capabilities of {negotiate.ConsumerId} are not known");
            _capabilities.Ask<object>(new QueryCapabilities(negotiate.ConsumerId), AskTimeout).ContinueOn(Self, answer =>
            {
                if (answer is not DeviceCapabilitiesReport report)
                {
                    Unknown();
                    return;
                }

                Reply(replyTo, sealedReply, Plan(service, negotiate.ConsumerId, report.Capabilities) is { } plan
                    ? plan
                    : Refusal(service, negotiate.ConsumerId, report.Capabilities));
            }, _ => Unknown());
        }));
    }

    public static ServicePlan? Plan(ServiceDescription service, string consumerId, DeviceCapabilities consumer)
    {
        var codec = service.RequiredCodecs.FirstOrDefault(c => consumer.Codecs.Contains(c, StringComparer.OrdinalIgnoreCase));
        if (codec is null && service.RequiredCodecs.Count > 0)
            return null;
        if (consumer.MaxBitrateKbps < service.MinBitrateKbps)
            return null;
        var serviceMax = service.Attributes.TryGetValue("maxBitrateKbps", out var max) && int.TryParse(max, out var m) ? m : int.MaxValue;
        return new ServicePlan(service.ServiceId, consumerId, codec ?? "", Math.Min(consumer.MaxBitrateKbps, serviceMax));
    }

    private static ServiceRefused Refusal(ServiceDescription service, string consumerId, DeviceCapabilities consumer) =>
        consumer.MaxBitrateKbps < service.MinBitrateKbps
            ? new ServiceRefused(service.ServiceId, consumerId, RefusalReason.BitrateTooLow,
                $"{service.ServiceId} needs {service.MinBitrateKbps} kbps; {consumerId} takes at most {consumer.MaxBitrateKbps}")
            : new ServiceRefused(service.ServiceId, consumerId, RefusalReason.NoCommonCodec,
                $"{service.ServiceId} streams {string.Join("/", service.RequiredCodecs)}; {consumerId} plays {string.Join("/", consumer.Codecs)}");
}
