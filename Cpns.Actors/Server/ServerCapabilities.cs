using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's Device Capabilities function (<c>capabilities</c>): asks a device's PN GW for its capability
/// document (the PN GW answers from its cache, keyed by content hash, or relays to the PNE) and keeps the latest
/// of each device.
/// </summary>
public sealed class ServerCapabilities : UntypedActor, IWithTimers
{
    private sealed record Expire(long RequestId) : INoSerializationVerificationNeeded;

    private readonly TimeSpan _queryTimeout;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly Placements _placements = new();
    private readonly Dictionary<long, (string DeviceId, IActorRef Asker)> _pending = new();
    private readonly Dictionary<string, CapabilityReport> _latest = new(StringComparer.Ordinal);
    private long _nextRequestId;

    public ServerCapabilities(EntityIdentity identity, CpnsSettings settings)
    {
        _link = new SecureLink(Context, identity, settings, _log);
        _queryTimeout = settings.Timeouts.Ask;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerCapabilities>(identity, settings);

    protected override void OnReceive(object message)
    {
        if (_placements.ApplyAndTrust(message, _link.Guard, trustPnes: false))
            return;

        switch (message)
        {
            case QueryCapabilities query:
                Query(query.DeviceId, Sender);
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                    OnAnswer(inner, senderId);
                break;
            case Expire expire:
                if (_pending.Remove(expire.RequestId, out var late))
                    late.Asker.Tell(new CapabilityQueryFailed(expire.RequestId, late.DeviceId, "no answer from its PN GW"));
                break;
            case PneMoved:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Query(string deviceId, IActorRef asker)
    {
        if (_placements.GatewayOf(deviceId) is not { } gatewayId)
        {
            asker.Tell(new CapabilityQueryFailed(0, deviceId, $"{deviceId} is not registered"));
            return;
        }

        var requestId = ++_nextRequestId;
        _pending[requestId] = (deviceId, asker);
        _link.Send(_placements.Gateway(gatewayId)!.Endpoints.Relay, new CapabilityQuery(requestId, deviceId));
        Timers.StartSingleTimer(requestId, new Expire(requestId), _queryTimeout);
    }

    private void OnAnswer(object message, string senderId)
    {
        switch (message)
        {
            case CapabilityReport report when _placements.GatewayOf(report.DeviceId) == senderId:
                _latest[report.DeviceId] = report;
                if (_pending.Remove(report.RequestId, out var pending))
                {
                    Timers.Cancel(report.RequestId);
                    pending.Asker.Tell(new DeviceCapabilitiesReport(report.DeviceId, report.Hash, report.Capabilities, report.FromCache));
                }

                break;
            case CapabilityQueryFailed failed when _pending.Remove(failed.RequestId, out var asked):
                Timers.Cancel(failed.RequestId);
                asked.Asker.Tell(failed);
                break;
            default:
                _log.Warning("capabilities: unexpected {0} from {1}", message.GetType().Name, senderId);
                break;
        }
    }
}
