using Cpns.Actors.Protocol;

namespace Cpns.Actors.Gateway;

/// <summary>
/// What a PN GW function sends down to its PNEs: straight through while a PNE is reachable, held in a bounded
/// per-PNE queue while it is not (the oldest dropped and counted), and sent in order when it is heard from again.
/// Owned by one actor.
/// </summary>
public sealed class DownlinkQueues(string function, int capacity)
{
    private readonly Dictionary<string, Queue<Action>> _held = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unreachable = new(StringComparer.Ordinal);
    private long _dropped;
    private long _delivered;

    public bool IsReachable(string pneId) => !_unreachable.Contains(pneId);

    /// <summary>Sends now, or holds the send until the PNE is reachable.</summary>
    public void Send(string pneId, Action send)
    {
        if (IsReachable(pneId))
        {
            _delivered++;
            send();
            return;
        }

        if (!_held.TryGetValue(pneId, out var queue))
            _held[pneId] = queue = new Queue<Action>();
        if (queue.Count >= capacity)
        {
            queue.Dequeue();
            _dropped++;
        }

        queue.Enqueue(send);
    }

    public void Update(PneReachability reachability)
    {
        if (!reachability.Reachable)
        {
            _unreachable.Add(reachability.DeviceId);
            return;
        }

        _unreachable.Remove(reachability.DeviceId);
        if (!_held.Remove(reachability.DeviceId, out var queue))
            return;
        while (queue.Count > 0)
        {
            _delivered++;
            queue.Dequeue()();
        }
    }

    public void Forget(string pneId)
    {
        _unreachable.Remove(pneId);
        _held.Remove(pneId);
    }

    public DownlinkStats Stats() => new(function, _held.Values.Sum(q => q.Count), _dropped, _delivered);
}
