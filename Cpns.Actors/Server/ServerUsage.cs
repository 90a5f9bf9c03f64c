using Cpns.Actors.Local;
using Akka.Event;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's usage statistics (<c>usage</c>, seed §5.3.1.10): the PN GWs' periodic, numbered reports of their
/// PNEs' sessions, bytes and durations, and the delivery function's record of local senders, kept durable and
/// queried by entity, service, group and time. A report resent after a lost acknowledgement is recorded once. Each
/// recorded report is handed to charging.
/// </summary>
public sealed class ServerUsage : CpnsPersistentActor
{
    public const int MaxRecordsPerReport = 10_000;

    private readonly SecureLink _link;
    private readonly IActorRef _charging;
    private readonly Placements _placements = new();
    private readonly List<UsageRecordedEvent> _reports = new();
    private readonly HashSet<(string Source, long Sequence)> _recorded = new();
    private readonly HashSet<(string DeviceId, string GatewayId)> _servedBy = new();
    private long _lastIndex;
    private long _invalidRecords;

    public ServerUsage(EntityIdentity identity, IActorRef charging, CpnsSettings settings) : base(settings)
    {
        _link = new SecureLink(Context, identity, settings, Log);
        _charging = charging;
    }

    public static Props Props(EntityIdentity identity, IActorRef charging, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerUsage>(identity, charging, settings);

    public override string PersistenceId => $"usage-{Settings.ServerId}";

    protected override object CreateSnapshot() => new UsageSnapshot(_reports.ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: UsageSnapshot snapshot }:
                foreach (var report in snapshot.Reports)
                    Apply(report);
                break;
            case UsageRecordedEvent recorded:
                Apply(recorded);
                break;
        }
    }

    private void Apply(UsageRecordedEvent recorded)
    {
        _reports.Add(recorded);
        _lastIndex = recorded.Index;
        if (recorded.Sequence != 0)
            _recorded.Add((recorded.Source, recorded.Sequence));
    }

    protected override void OnCommand(object message)
    {
        if (_placements.ApplyAndTrust(message, _link.Guard, trustPnes: false))
        {
            // A PN GW reports the usage of the PNEs it serves or served (a report may come after a PNE moved on).
            if (message is PnesPlaced placed)
                foreach (var pne in placed.Pnes)
                    _servedBy.Add((pne.DeviceId, placed.GatewayId));
            return;
        }

        switch (message)
        {
            case ISecureWire wire:
                if (!_link.TryOpen(wire, out var inner, out var senderId))
                    break;
                if (inner is UsageReport remote && remote.GatewayId == senderId && remote.Sequence != 0)
                {
                    if (wire is SignedEnvelope proof)
                    {
                        Record(remote, Sender, sealedAck: true, proof);
                    }
                    else
                    {
                        Log.Warning("usage: report {0} of {1} came unsigned; a usage report is signed by its PN GW", remote.Sequence, senderId);
                        Sender.Tell(new EnvelopeRejected(EnvelopeRejection.Malformed, "a usage report must come in its PN GW's signed envelope"));
                    }
                }
                else
                    Log.Warning("usage: unexpected {0} from {1}", inner.GetType().Name, senderId);
                break;
            case LocalRequest { Request: UsageReport report }:
                Record(report, Sender, sealedAck: false, proof: null);
                break;
            case GetUsageProof query:
                Sender.Tell(_reports.FirstOrDefault(r => r.Index == query.Index) is { } found
                    ? new UsageProof(found.Index, found.Source, found.Sequence, found.Proof)
                    : new UsageProof(query.Index, "", 0, null));
                break;
            case QueryUsage query:
                Sender.Tell(Summarize(query));
                break;
            case ReplayUsage replay:
                foreach (var recorded in _reports.Where(r => r.Index > replay.AfterUsageSequence))
                    Sender.Tell(new ChargeUsage(recorded.Index, recorded.Records));
                break;
            case PneMoved:
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void Record(UsageReport report, IActorRef replyTo, bool sealedAck, SignedEnvelope? proof)
    {
        void Ack()
        {
            if (sealedAck)
                _link.Send(replyTo, new UsageReportAck(report.GatewayId, report.Sequence));
        }

        if (report.Sequence != 0 && _recorded.Contains((report.GatewayId, report.Sequence)))
        {
            Ack(); // a resend: the acknowledgement was lost
            return;
        }

        var valid = report.Records.Take(MaxRecordsPerReport)
            .Where(r => IsValid(r, report.GatewayId) && (!sealedAck || r.DeviceId == report.GatewayId || _servedBy.Contains((r.DeviceId, report.GatewayId))))
            .ToList();
        var invalid = report.Records.Count - valid.Count;
        if (invalid > 0)
        {
            _invalidRecords += invalid;
            Log.Warning("usage: {0} invalid records in report {1} of {2} dropped ({3} so far)", invalid, report.Sequence,
                report.GatewayId, _invalidRecords);
        }

        Persist(new UsageRecordedEvent(_lastIndex + 1, report.GatewayId, report.Sequence, valid) { Proof = proof }, e =>
        {
            Apply(e);
            Ack();
            _charging.Tell(new ChargeUsage(e.Index, e.Records));
            SnapshotIfDue();
        });
    }

    private static bool IsValid(UsageRecord r, string reporter) =>
        r.GatewayId == reporter && DeviceIds.IsValid(r.DeviceId) && DeviceIds.IsValid(r.ServiceId) && DeviceIds.IsValid(r.GroupId) &&
        r.Sessions >= 0 && r.BytesUp >= 0 && r.BytesDown >= 0 && r.DurationMs >= 0 && r.FromMs <= r.ToMs;

    private UsageSummary Summarize(QueryUsage query)
    {
        var records = _reports.SelectMany(r => r.Records).Where(r =>
            (query.EntityId is null || r.DeviceId == query.EntityId || r.GatewayId == query.EntityId) &&
            (query.ServiceId is null || r.ServiceId == query.ServiceId) &&
            (query.GroupId is null || r.GroupId == query.GroupId) &&
            r.FromMs < query.ToMs && r.ToMs >= query.FromMs).ToList();
        return new UsageSummary(records.Sum(r => r.Sessions), records.Sum(r => r.BytesUp), records.Sum(r => r.BytesDown),
            records.Sum(r => r.DurationMs), records);
    }
}
