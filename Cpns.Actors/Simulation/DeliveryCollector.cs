using System.Diagnostics;
using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Simulation;

/// <summary>
/// Watches the event stream during a simulation: which entities registered, when each epoch was requested (flow step 1) and when each
/// member installed it, giving key-delivery latencies and push/pull counts, and how many expected
/// (group, member, epoch) deliveries are still outstanding.
/// </summary>
public sealed class DeliveryCollector : UntypedActor
{
    public sealed record Expect(IReadOnlyDictionary<string, (long Epoch, IReadOnlyList<string> Members)> Groups)
        : INoSerializationVerificationNeeded;

    public sealed record GetOutstanding : INoSerializationVerificationNeeded
    {
        public static readonly GetOutstanding Instance = new();
    }

    public sealed record GetStats : INoSerializationVerificationNeeded
    {
        public static readonly GetStats Instance = new();
    }

    public sealed record Stats(long PushInstalls, long PullInstalls, IReadOnlyList<TimedDelivery> Deliveries)
        : INoSerializationVerificationNeeded;

    /// <summary>One member's key, timed from the epoch's first step to its install; a new group's first epoch is its first key.</summary>
    public readonly record struct TimedDelivery(double Ms, DeliveryMode Mode, bool FirstKey);

    public sealed record GetRegistered : INoSerializationVerificationNeeded
    {
        public static readonly GetRegistered Instance = new();
    }

    public sealed record Registered(int Gateways, int Pnes) : INoSerializationVerificationNeeded;

    private readonly HashSet<string> _registeredGateways = new(StringComparer.Ordinal);
    private readonly HashSet<string> _registeredPnes = new(StringComparer.Ordinal);

    private readonly Dictionary<(string GroupId, long Epoch), long> _requestedAt = new();
    private readonly Dictionary<(string GroupId, string Member), long> _installedEpoch = new();
    private readonly List<TimedDelivery> _deliveries = new();
    private HashSet<(string GroupId, string Member)>? _outstanding;
    private Dictionary<string, long>? _expectedEpoch;
    private long _push;
    private long _pull;

    private readonly Action<Acknowledgement>? _acknowledged;

    public DeliveryCollector(Action<Acknowledgement>? acknowledged) => _acknowledged = acknowledged;

    public static Props Props(Action<Acknowledgement>? acknowledged = null) =>
        Akka.Actor.Props.Create(typeof(DeliveryCollector), acknowledged);

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(FlowStep));
        Context.System.EventStream.Subscribe(Self, typeof(KeyInstalled));
        Context.System.EventStream.Subscribe(Self, typeof(EntityRegistered));
    }

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case FlowStep { Step: 1, Leg: FlowLeg.ServerToGateway, Kind: not FlowKind.Revoke } step:
                _requestedAt.TryAdd((step.GroupId, step.Epoch), step.SentAt);
                break;
            case FlowStep:
                break;
            case KeyInstalled { IsMember: true } installed:
                if (installed.Mode == DeliveryMode.Push)
                    _push++;
                else
                    _pull++;
                if (_requestedAt.TryGetValue((installed.GroupId, installed.Epoch), out var at))
                {
                    var latency = Stopwatch.GetElapsedTime(at, installed.InstalledAt).TotalMilliseconds;
                    _deliveries.Add(new TimedDelivery(latency, installed.Mode, installed.Epoch == 1));
                }
                var key = (installed.GroupId, installed.HolderId);
                if (!_installedEpoch.TryGetValue(key, out var known) || known < installed.Epoch)
                    _installedEpoch[key] = installed.Epoch;
                if (_outstanding is not null && _expectedEpoch!.TryGetValue(installed.GroupId, out var expected) &&
                    installed.Epoch >= expected)
                    _outstanding.Remove(key);
                break;
            case KeyInstalled:
                break;
            case Expect expect:
                _expectedEpoch = expect.Groups.ToDictionary(kv => kv.Key, kv => kv.Value.Epoch);
                _outstanding = expect.Groups
                    .SelectMany(kv => kv.Value.Members.Select(m => (kv.Key, m)))
                    .Where(k => !_installedEpoch.TryGetValue(k, out var e) || e < _expectedEpoch[k.Key])
                    .ToHashSet();
                Sender.Tell(_outstanding.Count);
                break;
            case GetOutstanding:
                Sender.Tell(_outstanding?.Count ?? -1);
                break;
            case EntityRegistered registered:
                (registered.Kind == EntityKind.Pne ? _registeredPnes : _registeredGateways).Add(registered.DeviceId);
                _acknowledged?.Invoke(new Acknowledgement(registered.Kind == EntityKind.Pne ? "pne" : "gateway",
                    registered.DeviceId, registered.RegistrationId, null, null));
                break;
            case GetRegistered:
                Sender.Tell(new Registered(_registeredGateways.Count, _registeredPnes.Count));
                break;
            case GetStats:
                Sender.Tell(new Stats(_push, _pull, _deliveries.ToList()));
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
