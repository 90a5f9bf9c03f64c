using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's content function (<c>content</c>). Group content arrives from the server once for the whole PN and is
/// fanned out here to the members behind this PN GW (held while a member sleeps or cannot be reached); the PN GW
/// never holds a group key it would need to read it. Its PNEs' own posts go up to the server. Usage — sessions,
/// bytes up and down, durations per PNE, service and group — is counted here (a delivery counts when the PNE
/// confirms it) and reported to the server every <c>cpns.usage.report-interval</c>, each report numbered and resent
/// until the server acknowledges it.
/// </summary>
public sealed class ContentRelay : UntypedActor, IWithTimers
{
    private const int MaxUnacknowledgedReports = 10_000;

    private sealed record ReportDue : INoSerializationVerificationNeeded
    {
        public static readonly ReportDue Instance = new();
    }

    private sealed record PendingReceipt(string ServiceId, string GroupId, long Bytes, long SentAtMs);

    private sealed class Usage
    {
        public long Sessions;
        public long BytesUp;
        public long BytesDown;
        public long DurationMs;
        public long FromMs;
    }

    private readonly EntityIdentity _identity;
    private readonly CpnsSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly DownlinkQueues _downlink;
    private readonly PnView _pn = new();
    private readonly Dictionary<(string DeliveryId, string DeviceId), PendingReceipt> _pending = new();
    private readonly Dictionary<(string DeviceId, string ServiceId, string GroupId), Usage> _usage = new();
    private readonly SortedDictionary<long, UsageReport> _unacknowledged = new();
    private readonly long _sequenceBase;
    private long _nextSequence;
    private long _groupMessages;
    private long _copiesSent;
    private long _receipts;
    private long _postsRelayed;

    public ContentRelay(EntityIdentity identity, CpnsSettings settings)
    {
        _identity = identity;
        _settings = settings;
        _link = new SecureLink(Context, identity, settings, _log);
        _downlink = new DownlinkQueues("content", settings.Connections.DownlinkQueue);
        // Report numbers keep growing across restarts of this PN GW, so the server never takes a new report for a resend.
        _sequenceBase = Context.System.Scheduler.Now.ToUnixTimeMilliseconds() * 1000;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, CpnsSettings settings) => Akka.Actor.Props.Create<ContentRelay>(identity, settings);

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override void PreStart() =>
        Timers.StartPeriodicTimer(ReportDue.Instance, ReportDue.Instance, _settings.Usage.ReportInterval);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ServerAttached:
                _pn.Apply(message, _link.Guard);
                SendUnacknowledged();
                break;
            case PneAttached:
                _pn.Apply(message, _link.Guard);
                break;
            case PneDetached detached:
                _pn.Apply(detached, _link.Guard);
                _downlink.Forget(detached.DeviceId);
                break;
            case PneReachability reachability:
                _pn.Apply(reachability, _link.Guard);
                _downlink.Update(reachability);
                break;
            case ISecureWire wire:
                if (!_link.TryOpen(wire, out var inner, out var senderId))
                    break;
                switch (inner)
                {
                    case GroupContent content when _pn.IsFromServer(senderId):
                        FanOut(content);
                        break;
                    case UsageReportAck ack when _pn.IsFromServer(senderId) && ack.GatewayId == _identity.DeviceId:
                        _unacknowledged.Remove(ack.Sequence);
                        break;
                    default:
                        _log.Warning("{0} content: unexpected {1} from {2}", _identity.DeviceId, inner.GetType().Name, senderId);
                        break;
                }

                break;
            case ContentReceipt receipt:
                OnReceipt(receipt);
                break;
            case OwnContentUsage own:
                var usage = UsageOf(_identity.DeviceId, own.ServiceId, own.GroupId);
                usage.Sessions++;
                usage.BytesUp += own.BytesUp;
                usage.BytesDown += own.BytesDown;
                break;
            case PostFromPne post:
                OnPost(post);
                break;
            case ReportDue:
                CloseWindow();
                SendUnacknowledged();
                break;
            case GetContentStats:
                Sender.Tell(new ContentStats(_identity.DeviceId, _groupMessages, _copiesSent, _receipts, _postsRelayed));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void FanOut(GroupContent content)
    {
        _groupMessages++;
        var bytes = content.Ciphertext.Sealed.Length;
        foreach (var memberId in content.Recipients)
        {
            if (memberId == _identity.DeviceId && _identity.Kind == EntityKind.Both)
            {
                // For the BOTH device itself: its entity hands it to its own PNE role.
                Context.Parent.Tell(new ContentForPne(content.DeliveryId, content.ServiceId, content.Ciphertext));
                continue;
            }

            if (_pn.Pne(memberId) is not { } pne)
            {
                _log.Info("{0} content: {1} is not behind this PN GW; delivery {2} skips it", _identity.DeviceId, memberId,
                    content.DeliveryId);
                continue;
            }

            _pending[(content.DeliveryId, memberId)] = new PendingReceipt(content.ServiceId, content.GroupId, bytes, NowMs);
            var copy = new ContentForPne(content.DeliveryId, content.ServiceId, content.Ciphertext);
            _downlink.Send(memberId, () =>
            {
                _copiesSent++;
                _link.Send(pne.Endpoints.Pne, copy);
            });
        }
    }

    private void OnReceipt(ContentReceipt receipt)
    {
        if (!_pending.Remove((receipt.DeliveryId, receipt.DeviceId), out var pending))
        {
            _log.Warning("{0} content: receipt for {1} from {2} matches nothing sent; ignored", _identity.DeviceId, receipt.DeliveryId,
                receipt.DeviceId);
            return;
        }

        _receipts++;
        var usage = UsageOf(receipt.DeviceId, pending.ServiceId, pending.GroupId);
        usage.Sessions++;
        usage.BytesDown += pending.Bytes;
        usage.DurationMs += Math.Max(0, NowMs - pending.SentAtMs);
    }

    private void OnPost(PostFromPne from)
    {
        var post = from.Post;
        if (_pn.Server is not { } server)
        {
            _link.Send(Sender, new ContentRejected(post.DeliveryId, DeliveryError.NoKey, $"{_identity.DeviceId} is not registered"));
            return;
        }

        _postsRelayed++;
        var usage = UsageOf(from.DeviceId, post.ServiceId, post.GroupId);
        usage.Sessions++;
        usage.BytesUp += post.Ciphertext.Sealed.Length;
        // Relayed unchanged: the server checks the PNE's own signature; its answer goes straight back to the PNE.
        server.Delivery.Forward(from.Envelope);
    }

    private Usage UsageOf(string deviceId, string serviceId, string groupId)
    {
        if (!_usage.TryGetValue((deviceId, serviceId, groupId), out var usage))
            _usage[(deviceId, serviceId, groupId)] = usage = new Usage { FromMs = NowMs };
        return usage;
    }

    private void CloseWindow()
    {
        if (_usage.Count == 0)
            return;
        var now = NowMs;
        var records = _usage.Select(kv => new UsageRecord(kv.Key.DeviceId, _identity.DeviceId, kv.Key.ServiceId, kv.Key.GroupId,
            kv.Value.Sessions, kv.Value.BytesUp, kv.Value.BytesDown, kv.Value.DurationMs, kv.Value.FromMs, now)).ToList();
        _usage.Clear();
        var sequence = _sequenceBase + ++_nextSequence;
        _unacknowledged[sequence] = new UsageReport(_identity.DeviceId, sequence, records);
        if (_unacknowledged.Count > MaxUnacknowledgedReports)
        {
            var oldest = _unacknowledged.Keys.First();
            _unacknowledged.Remove(oldest);
            _log.Error("{0} content: the server has not acknowledged {1} usage reports; report {2} dropped", _identity.DeviceId,
                MaxUnacknowledgedReports, oldest);
        }
    }

    private void SendUnacknowledged()
    {
        if (_pn.Server is not { } server)
            return;
        foreach (var report in _unacknowledged.Values)
            _link.SendSigned(server.Usage, report); // signed, and kept by the server as proof of what this PN GW reported
    }
}
