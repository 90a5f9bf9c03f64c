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
    private readonly int _pruneAbove = pruneAbove;

    private readonly Dictionary<(string GroupId, long Epoch, string GatewayId), long> _answeredAtMs = new();

    /// <summary>
    /// The size at which old answers are next looked for: twice what a scan left, so that a ledger of answers all still
    /// kept is not scanned again at every answer (a scan costs the whole ledger; this way it is paid once per doubling).
    /// </summary>
    private int _scanAt = pruneAbove;

    public int Count => _answeredAtMs.Count;

    /// <summary>How many times the ledger was scanned for old answers.</summary>
    public int Scans { get; private set; }

    /// <summary>True if this pull was sent before the last answer to the same pull (0: sent at an unknown time).</summary>
    public bool IsCoveredRepeat(string groupId, long epoch, string gatewayId, long sentAtMs) =>
        sentAtMs > 0 && _answeredAtMs.TryGetValue((groupId, epoch, gatewayId), out var answeredAt) && sentAtMs < answeredAt;

    public void Answered(string groupId, long epoch, string gatewayId, long nowMs)
    {
        _answeredAtMs[(groupId, epoch, gatewayId)] = nowMs;
        if (_answeredAtMs.Count <= _scanAt)
            return;
        Scans++;
        var before = nowMs - (long)keep.TotalMilliseconds;
        foreach (var (pull, at) in _answeredAtMs)
        {
            if (at < before)
                _answeredAtMs.Remove(pull);
        }

        _scanAt = Math.Max(_pruneAbove, 2 * _answeredAtMs.Count);
    }
}
