using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE's own group requests (create, add, remove, grant, delete), each waiting for the server's answer. One request per
/// group is out at a time, the rest wait behind it: the server answers a group's requests in order, but a busy answer
/// comes at once, so two out together could be answered out of order. A busy answer sends the same request again after
/// the wait the server asked for, until <c>cpns.load.max-busy-answers</c>; then its asker hears the busy answer.
/// </summary>
public sealed class GroupRequests(int maxBusyAnswers)
{
    private sealed class Asked(ICpnsMessage request, IActorRef asker)
    {
        public ICpnsMessage Request { get; } = request;
        public IActorRef Asker { get; } = asker;
        public int BusyAnswers { get; set; }
    }

    private readonly Dictionary<string, Queue<Asked>> _byGroup = new(StringComparer.Ordinal);

    /// <summary>Takes a request; true when it goes on the wire now (nothing else of its group is out).</summary>
    public bool Add(string groupId, ICpnsMessage request, IActorRef asker)
    {
        if (!_byGroup.TryGetValue(groupId, out var queue))
            _byGroup[groupId] = queue = new Queue<Asked>();
        queue.Enqueue(new Asked(request, asker));
        return queue.Count == 1;
    }

    /// <summary>The request of the group that is out, if any.</summary>
    public ICpnsMessage? Out(string groupId) => _byGroup.TryGetValue(groupId, out var queue) ? queue.Peek().Request : null;

    /// <summary>The server answered the request that is out: who asked it, and the next request of the group to send.</summary>
    public (IActorRef? Asker, ICpnsMessage? Next) Answered(string groupId)
    {
        if (!_byGroup.TryGetValue(groupId, out var queue))
            return (null, null);
        var answered = queue.Dequeue();
        if (queue.Count > 0)
            return (answered.Asker, queue.Peek().Request);
        _byGroup.Remove(groupId);
        return (answered.Asker, null);
    }

    /// <summary>A busy answer to the request that is out: true when it is to be sent again, false when it has had its share.</summary>
    public bool Busy(string groupId)
    {
        if (!_byGroup.TryGetValue(groupId, out var queue))
            return false;
        var asked = queue.Peek();
        asked.BusyAnswers++;
        return asked.BusyAnswers <= maxBusyAnswers;
    }
}
