namespace Cpns.Actors.Server;

/// <summary>
/// When the server last answered each PN GW's pull of a group epoch. A pull its PN GW sent before that answer is a
/// repeat the answer already covers — a retry that queued behind the original while the server was behind — and is not
/// answered again. A pull sent after it (the answer was lost) is answered. Entries outlive any retry schedule, then go.
/// Send times are the PN GW's clock: one running behind the server's by d has a retry sent within d after the answer
/// skipped too, and the retry after it answered — a delay of one backoff step, never a pull left unanswered for good.
/// </summary>
public sealed class PullLedger(TimeSpan keep, int pruneAbove = 4096)
{
    private readonly Dictionary<(string GroupId, long Epoch, string GatewayId), long> _answeredAtMs = new();

    public int Count => _answeredAtMs.Count;

    /// <summary>True if this pull was sent before the last answer to the same pull (0: sent at an unknown time).</summary>
    public bool IsCoveredRepeat(string groupId, long epoch, string gatewayId, long sentAtMs) =>
        sentAtMs > 0 && _answeredAtMs.TryGetValue((groupId, epoch, gatewayId), out var answeredAt) && sentAtMs < answeredAt;

    public void Answered(string groupId, long epoch, string gatewayId, long nowMs)
    {
        _answeredAtMs[(groupId, epoch, gatewayId)] = nowMs;
        if (_answeredAtMs.Count <= pruneAbove)
            return;
        var before = nowMs - (long)keep.TotalMilliseconds;
        foreach (var (pull, at) in _answeredAtMs.ToList())
        {
            if (at < before)
                _answeredAtMs.Remove(pull);
        }
    }
}
