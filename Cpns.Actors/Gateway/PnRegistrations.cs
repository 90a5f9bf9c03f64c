using System.Diagnostics;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// The PNE registrations a PN GW forwards to the server, in batches: those waiting for the server's answer (each with
/// whom to tell), the batches in flight, and the PNEs the server has registered through this PN GW.
/// </summary>
public sealed class PnRegistrations(TimeSpan batchReply)
{
    private readonly Dictionary<string, (PneRegistration Registration, IActorRef ReplyTo)> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<long, List<string>> _inFlight = new();
    private readonly Dictionary<long, long> _sentOnceAt = new();
    private readonly HashSet<string> _registered = new(StringComparer.Ordinal);
    private long _nextBatchId;
    private long _registryBusyUntilMs;

    // How long a batch waits for the registry's answer before it goes again: learnt from the answers (sent once only, as
    // Karn's rule has it), doubled by every wait that runs out, so that an overloaded registry is not sent its work twice.
    private AdaptiveTimeout? _replyTime;

    private AdaptiveTimeout ReplyTime => _replyTime ??= new AdaptiveTimeout(batchReply, batchReply * 8);

    public TimeSpan ReplyTimeout => ReplyTime.Current;

    public int WaitingCount => _waiting.Count;

    public bool IsWaiting(string deviceId) => _waiting.ContainsKey(deviceId);

    public void Wait(PneRegistration registration, IActorRef replyTo) => _waiting[registration.DeviceId] = (registration, replyTo);

    public bool StopWaiting(string deviceId) => _waiting.Remove(deviceId);

    public bool TakeWaiting(string deviceId, out (PneRegistration Registration, IActorRef ReplyTo) waiting) =>
        _waiting.Remove(deviceId, out waiting);

    public int RegisteredCount => _registered.Count;

    public bool IsRegistered(string deviceId) => _registered.Contains(deviceId);

    public void Registered(string deviceId) => _registered.Add(deviceId);

    public void Unregistered(string deviceId) => _registered.Remove(deviceId);

    /// <summary>The server lost this PN GW: none of its PNEs is registered any more (the PN table keeps them).</summary>
    public void ServerLost() => _registered.Clear();

    /// <summary>How long before the registry, which said it was busy, takes a batch again (0: now).</summary>
    public long BusyForMs(long nowMs) => Math.Max(0, _registryBusyUntilMs - nowMs);

    public void BusyUntil(long untilMs) => _registryBusyUntilMs = Math.Max(_registryBusyUntilMs, untilMs);

    /// <summary>A new batch of every waiting PNE not already in one, or null if there is none.</summary>
    public (long BatchId, List<PneRegistration> Pnes)? NextBatch()
    {
        var ids = _waiting.Keys.Where(id => !_inFlight.Values.Any(b => b.Contains(id))).ToList();
        if (ids.Count == 0)
            return null;
        var batchId = ++_nextBatchId;
        _inFlight[batchId] = ids;
        _sentOnceAt[batchId] = Stopwatch.GetTimestamp();
        return (batchId, Pnes(batchId)!);
    }

    /// <summary>A batch that got no answer in time, to send again (null: answered meanwhile, or nobody in it waits any more).</summary>
    public List<PneRegistration>? TimedOut(long batchId)
    {
        if (!_inFlight.ContainsKey(batchId))
            return null;
        ReplyTime.TimedOut();
        _sentOnceAt.Remove(batchId);
        return Pnes(batchId);
    }

    /// <summary>The batches every PNE of which the server answered: done (their resend timers can go).</summary>
    public List<long> Answered(IReadOnlySet<string> answered)
    {
        var done = _inFlight.Where(kv => kv.Value.All(answered.Contains)).Select(kv => kv.Key).ToList();
        foreach (var batchId in done)
        {
            _inFlight.Remove(batchId);
            if (_sentOnceAt.Remove(batchId, out var sentAt))
                ReplyTime.Observe(Stopwatch.GetElapsedTime(sentAt));
        }

        return done;
    }

    private List<PneRegistration>? Pnes(long batchId)
    {
        var pnes = _inFlight[batchId].Where(_waiting.ContainsKey).Select(id => _waiting[id].Registration).ToList();
        if (pnes.Count > 0)
            return pnes;
        _inFlight.Remove(batchId);
        _sentOnceAt.Remove(batchId);
        return null;
    }
}
