using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's Device Management function (<c>dm</c>): Get, Replace and Exec on a device's management tree, sent
/// signed through the device's PN GW; the answer (or a typed error) goes back to whoever asked.
/// </summary>
public sealed class ServerDm : UntypedActor, IWithTimers
{
    private sealed record Expire(long RequestId) : INoSerializationVerificationNeeded;

    private readonly TimeSpan _commandTimeout;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly Placements _placements = new();
    private readonly Dictionary<long, (DmCommand Command, IActorRef Asker)> _pending = new();
    private readonly DmAlertLog _alerts = new();
    private long _nextRequestId;

    public ServerDm(EntityIdentity identity, CpnsSettings settings)
    {
        _link = new SecureLink(Context, identity, settings, _log);
        _commandTimeout = settings.Timeouts.Ask;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, CpnsSettings settings) => Akka.Actor.Props.Create<ServerDm>(identity, settings);

    protected override void OnReceive(object message)
    {
        if (message is EntitiesRemoved removed)
        {
            foreach (var id in removed.DeviceIds)
                _alerts.Forget(id);
        }

        // PNEs are trusted too: their alerts come signed end to end.
        if (_placements.ApplyAndTrust(message, _link.Guard, trustPnes: true))
            return;

        switch (message)
        {
            case DmCommand command:
                Send(command);
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            case GetDmAlerts query:
                Sender.Tell(new DmAlerts(query.DeviceId, _alerts.Of(query.DeviceId)));
                break;
            case ISecureWire wire:
                if (!_link.TryOpen(wire, out var inner, out var senderId))
                    break;
                if (inner is DmAlert alert)
                {
                    OnAlert(alert, senderId);
                    break;
                }

                if (inner is DmResponse response && _pending.Remove(response.RequestId, out var pending))
                {
                    Timers.Cancel(response.RequestId);
                    if (_placements.GatewayOf(pending.Command.DeviceId) != senderId)
                        _log.Warning("dm: answer for {0} came from {1}, not its PN GW", pending.Command.DeviceId, senderId);
                    else
                        Reply(pending.Asker, pending.Command, response.Status, response.Value, response.Detail);
                }

                break;
            case Expire expire:
                if (_pending.Remove(expire.RequestId, out var late))
                    Reply(late.Asker, late.Command, DmStatus.TimedOut, null, "no answer through the PN GW");
                break;
            case PneMoved:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnAlert(DmAlert alert, string senderId)
    {
        var problem = alert.DeviceId != senderId ? $"an alert names {alert.DeviceId} but is signed by {senderId}"
            : _placements.GatewayOf(senderId) is null && !_placements.IsGateway(senderId) ? $"{senderId} is not registered"
            : DmAlertLog.Problem(alert);
        if (problem is not null)
        {
            _link.CountRefusal("AlertRefused");
            _log.Info("dm: alert from {0} refused: {1}", senderId, problem);
            _link.Send(Sender, new DmAlertAnswer(senderId, 0, false, problem, alert.RequestId));
            return;
        }

        var record = _alerts.Add(alert, Context.System.Scheduler.Now.ToUnixTimeMilliseconds());
        _log.Info("dm: {0} raised {1} on '{2}' (alert {3})", senderId, alert.AlertType, alert.Path, record.AlertId);
        _link.Send(Sender, new DmAlertAnswer(senderId, record.AlertId, true, "", alert.RequestId));
    }

    private void Send(DmCommand command)
    {
        if (_placements.GatewayOf(command.DeviceId) is not { } gatewayId)
        {
            Reply(Sender, command, DmStatus.Unreachable, null, $"{command.DeviceId} is not registered");
            return;
        }

        var requestId = ++_nextRequestId;
        _pending[requestId] = (command, Sender);
        _link.Send(_placements.Gateway(gatewayId)!.Endpoints.Relay,
            new DmRequest(requestId, command.DeviceId, command.Operation, command.Path, command.Value));
        Timers.StartSingleTimer(requestId, new Expire(requestId), _commandTimeout);
    }

    private static void Reply(IActorRef asker, DmCommand command, DmStatus status, string? value, string detail) =>
        asker.Tell(new DmResult(command.DeviceId, command.Operation, command.Path, status, value, detail));
}
