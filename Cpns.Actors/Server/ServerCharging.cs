using Akka.Event;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's charging function (<c>charging</c>, seed §5.3.1.11): a charging data record for every usage record,
/// rated by the service's tariff (units of <c>cpns.charging.unit-bytes</c>, at a rate per unit), kept durable, and
/// statements per user or group over a period. It follows usage by usage's report index: after a restart it asks
/// for every report it has not charged, so a report recorded just before a crash is still charged, and only once.
/// </summary>
public sealed class ServerCharging : CpnsPersistentActor
{
    private readonly List<ChargingRecord> _records = new();
    private long _lastUsageIndex;

    public ServerCharging(CpnsSettings settings) : base(settings)
    {
    }

    public static Props Props(CpnsSettings settings) => Akka.Actor.Props.Create<ServerCharging>(settings);

    public override string PersistenceId => $"charging-{Settings.ServerId}";

    protected override object CreateSnapshot() => new ChargingSnapshot(_lastUsageIndex, _records.ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: ChargingSnapshot snapshot }:
                _lastUsageIndex = snapshot.LastUsageIndex;
                _records.AddRange(snapshot.Records);
                break;
            case ChargesRecordedEvent charged:
                Apply(charged);
                break;
            case RecoveryCompleted:
                // Made before usage (which hands it every report), it reaches usage through the server entity.
                Context.Parent.Tell(new ReplayUsage(_lastUsageIndex));
                break;
        }
    }

    private void Apply(ChargesRecordedEvent charged)
    {
        _records.AddRange(charged.Records);
        _lastUsageIndex = charged.UsageIndex;
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ChargeUsage charge when charge.UsageSequence <= _lastUsageIndex:
                break; // already charged (a replay overlapping live reports)
            case ChargeUsage charge when charge.UsageSequence > _lastUsageIndex + 1:
                Log.Info("charging: usage report {0} arrived after {1}; asking for the ones between", charge.UsageSequence,
                    _lastUsageIndex);
                Sender.Tell(new ReplayUsage(_lastUsageIndex));
                break;
            case ChargeUsage charge:
                Persist(new ChargesRecordedEvent(charge.UsageSequence, Rate(charge).ToList()), e =>
                {
                    Apply(e);
                    SnapshotIfDue();
                });
                break;
            case GetStatement query:
                Sender.Tell(Statement(query, _records, Settings.Charging.Currency));
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private IEnumerable<ChargingRecord> Rate(ChargeUsage charge)
    {
        var n = 0;
        foreach (var usage in charge.Records)
        {
            n++;
            if (usage.Sessions == 0 && usage.BytesUp == 0 && usage.BytesDown == 0)
                continue;
            var volume = usage.BytesUp + usage.BytesDown;
            var units = (volume + Settings.Charging.UnitBytes - 1) / Settings.Charging.UnitBytes;
            var rate = Settings.Charging.Rates.GetValueOrDefault(usage.ServiceId, Settings.Charging.DefaultRate);
            yield return new ChargingRecord($"cdr-{charge.UsageSequence}-{n}", usage.DeviceId, usage.ServiceId, usage.GroupId,
                usage.FromMs, usage.ToMs, volume, usage.Sessions, units, rate, units * rate, Settings.Charging.Currency);
        }
    }

    public static ChargingStatement Statement(GetStatement query, IEnumerable<ChargingRecord> all, string currency)
    {
        var records = all.Where(r =>
                query.Subject switch
                {
                    StatementSubject.User => r.UserId == query.SubjectId,
                    StatementSubject.Group => r.GroupId == query.SubjectId,
                    _ => true,
                } &&
                r.StartMs < query.ToMs && r.EndMs >= query.FromMs)
            .OrderBy(r => r.StartMs).ThenBy(r => r.RecordId, StringComparer.Ordinal).ToList();
        return new ChargingStatement(query.Subject, query.SubjectId, query.FromMs, query.ToMs, records,
            records.Sum(r => r.VolumeBytes), records.Sum(r => r.Sessions), records.Sum(r => r.Units), records.Sum(r => r.Amount),
            currency);
    }
}
