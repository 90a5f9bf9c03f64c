using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Common;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's relay (<c>relay</c>) between the server and the PN for device capabilities and device management.
/// Capability documents are cached by content hash: a query is answered from the cache while the PNE's heartbeats
/// carry the same hash, and relayed to the PNE otherwise. Management commands go to the PNE, or are refused with a
/// typed status when it cannot be reached; commands for the PN GW itself are answered from its own tree.
/// </summary>
public sealed class Relay : UntypedActor, IWithTimers
{
    private sealed record Expire(long RelayId) : INoSerializationVerificationNeeded;

    private sealed record Relayed(object Request, IActorRef Server);

    private readonly TimeSpan _relayTimeout;

    private readonly EntityIdentity _identity;
    private DeviceCapabilities _capabilities;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly ManagementTree _tree;
    private readonly PnView _pn = new();
    private readonly Dictionary<string, CapabilityReport> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Octets> _announcedHash = new(StringComparer.Ordinal);
    private readonly Dictionary<long, Relayed> _relayed = new();
    private long _nextRelayId;
    private long _capabilitiesRelayed;
    private long _capabilitiesFromCache;
    private long _managementRelayed;

    public Relay(EntityIdentity identity, DeviceCapabilities capabilities, CpnsSettings settings)
    {
        _identity = identity;
        _capabilities = capabilities;
        _relayTimeout = settings.Timeouts.DeviceRelay;
        _link = new SecureLink(Context, identity, settings, _log);
        _tree = new ManagementTree()
            .Leaf("./DevInfo/Id", () => identity.DeviceId)
            .Leaf("./DevInfo/Man", () => "CPNS on Akka.NET")
            .Leaf("./DevInfo/Mod", () => _capabilities.DeviceKind)
            .Leaf("./DevInfo/Kind", () => identity.Kind.ToString())
            .Leaf("./CPNS/PnSecurity", () => _capabilities.PnSecurityLevel.ToString());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, DeviceCapabilities capabilities, CpnsSettings settings) =>
        Akka.Actor.Props.Create<Relay>(identity, capabilities, settings);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case PneDetached detached:
                _pn.Apply(detached, _link.Guard);
                _cache.Remove(detached.DeviceId);
                break;
            case ServerAttached or PneAttached or PneReachability:
                _pn.Apply(message, _link.Guard);
                break;
            case CapabilityHashSeen seen:
                _announcedHash[seen.DeviceId] = seen.Hash;
                break;
            case UpdateCapabilities update when update.DeviceId == _identity.DeviceId:
                _capabilities = update.Capabilities;
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
            case Expire expire:
                if (_relayed.Remove(expire.RelayId, out var late))
                    Answer(late, "the PNE did not answer");
                break;
            case GetRelayStats:
                Sender.Tell(new RelayStats(_capabilitiesRelayed, _capabilitiesFromCache, _managementRelayed));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnFromServer(object message)
    {
        switch (message)
        {
            case CapabilityQuery query when query.DeviceId == _identity.DeviceId:
                _link.Send(Sender, new CapabilityReport(query.RequestId, query.DeviceId, CapabilityHash.Of(_capabilities),
                    _capabilities, FromCache: false));
                break;
            case CapabilityQuery query:
                OnCapabilityQuery(query);
                break;
            case DmRequest request when request.DeviceId == _identity.DeviceId:
                var (status, value, detail) = _tree.Apply(request.Operation, request.Path, request.Value);
                _link.Send(Sender, new DmResponse(request.RequestId, request.DeviceId, status, value, detail));
                break;
            case DmRequest request:
                OnDmRequest(request);
                break;
            default:
                _log.Warning("{0}: relay: unexpected {1} from the server", _identity.DeviceId, message.GetType().Name);
                break;
        }
    }

    private void OnCapabilityQuery(CapabilityQuery query)
    {
        if (_pn.Pne(query.DeviceId) is not { } pne)
        {
            _link.Send(Sender, new CapabilityQueryFailed(query.RequestId, query.DeviceId, $"{query.DeviceId} is not attached here"));
            return;
        }

        // The cache is good while the PNE's heartbeats announce the hash of the document we hold.
        if (_cache.TryGetValue(query.DeviceId, out var cached) &&
            (!_announcedHash.TryGetValue(query.DeviceId, out var announced) || announced == cached.Hash))
        {
            _capabilitiesFromCache++;
            _link.Send(Sender, cached with { RequestId = query.RequestId, FromCache = true });
            return;
        }

        if (!_pn.IsReachable(query.DeviceId))
        {
            _link.Send(Sender, new CapabilityQueryFailed(query.RequestId, query.DeviceId, $"{query.DeviceId} cannot be reached now"));
            return;
        }

        _capabilitiesRelayed++;
        RelayToPne(pne, query, new CapabilityQuery(_nextRelayId + 1, query.DeviceId));
    }

    private void OnDmRequest(DmRequest request)
    {
        if (_pn.Pne(request.DeviceId) is not { } pne || !_pn.IsReachable(request.DeviceId))
        {
            _link.Send(Sender, new DmResponse(request.RequestId, request.DeviceId, DmStatus.Unreachable, null,
                $"{request.DeviceId} cannot be reached through {_identity.DeviceId} now"));
            return;
        }

        _managementRelayed++;
        RelayToPne(pne, request, request with { RequestId = _nextRelayId + 1 });
    }

    private void RelayToPne(PneAttached pne, object original, object relayed)
    {
        var relayId = ++_nextRelayId;
        _relayed[relayId] = new Relayed(original, Sender);
        _link.Send(pne.Endpoints.Pne, relayed);
        Timers.StartSingleTimer(relayId, new Expire(relayId), _relayTimeout);
    }

    private void OnFromPne(object message, string senderId)
    {
        switch (message)
        {
            case CapabilityReport report when report.DeviceId == senderId && _relayed.Remove(report.RequestId, out var relayed) &&
                                             relayed.Request is CapabilityQuery query:
                Timers.Cancel(report.RequestId);
                _cache[senderId] = report;
                _announcedHash[senderId] = report.Hash;
                _link.Send(relayed.Server, report with { RequestId = query.RequestId, FromCache = false });
                break;
            case DmResponse response when response.DeviceId == senderId && _relayed.Remove(response.RequestId, out var relayed) &&
                                         relayed.Request is DmRequest request:
                Timers.Cancel(response.RequestId);
                _link.Send(relayed.Server, response with { RequestId = request.RequestId });
                break;
            default:
                _log.Warning("{0}: relay: unexpected {1} from {2}", _identity.DeviceId, message.GetType().Name, senderId);
                break;
        }
    }

    private void Answer(Relayed relayed, string why)
    {
        switch (relayed.Request)
        {
            case CapabilityQuery query:
                _link.Send(relayed.Server, new CapabilityQueryFailed(query.RequestId, query.DeviceId, why));
                break;
            case DmRequest request:
                _link.Send(relayed.Server, new DmResponse(request.RequestId, request.DeviceId, DmStatus.TimedOut, null, why));
                break;
        }
    }
}
