using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// A device's applications' directory requests waiting for their answers: per service id, in the order they were sent
/// (one service's requests are answered in order), and searches by the request id sent in place of the asker's. Owned by
/// one actor: a PNE, or a BOTH device's own PNE role.
/// </summary>
public sealed class ApplicationRequests
{
    private readonly Dictionary<string, Queue<IActorRef>> _byService = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (IActorRef Asker, long TheirRequestId)> _searches = new();
    private long _lastSearchId;

    public void AwaitService(string serviceId, IActorRef asker)
    {
        if (!_byService.TryGetValue(serviceId, out var askers))
            _byService[serviceId] = askers = new Queue<IActorRef>();
        askers.Enqueue(asker);
    }

    /// <summary>Gives a directory answer to the next asker about its service; false if nobody waits for it.</summary>
    public bool AnswerService(IWithServiceId answer)
    {
        if (!_byService.TryGetValue(answer.ServiceId, out var askers) || askers.Count == 0)
            return false;
        askers.Dequeue().Tell(answer);
        if (askers.Count == 0)
            _byService.Remove(answer.ServiceId);
        return true;
    }

    /// <summary>The search as sent: with this device as the consumer and a request id of its own.</summary>
    public SearchServices AwaitSearch(SearchServices search, string consumerId, IActorRef asker)
    {
        var requestId = ++_lastSearchId;
        _searches[requestId] = (asker, search.RequestId);
        return search with { ConsumerId = consumerId, RequestId = requestId };
    }

    /// <summary>Gives a search's answer to its asker under the asker's own request id; false if it matches no search.</summary>
    public bool AnswerSearch(object answer)
    {
        switch (answer)
        {
            case SearchResult result when _searches.Remove(result.RequestId, out var search):
                search.Asker.Tell(result with { RequestId = search.TheirRequestId });
                return true;
            case SearchRejected rejected when _searches.Remove(rejected.RequestId, out var search):
                search.Asker.Tell(rejected with { RequestId = search.TheirRequestId });
                return true;
            default:
                return false;
        }
    }
}
