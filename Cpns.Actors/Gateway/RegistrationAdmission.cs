using Cpns.Actors.Common;

namespace Cpns.Actors.Gateway;

/// <summary>
/// Whether a PN GW takes another PNE in now, decided when the PNE scans (its answer costs no public-key work): at most
/// <c>cpns.load.registrations-in-progress</c> PNEs between that answer and the server's, and none while the node's actors
/// wait longer than <c>cpns.load.busy-lag</c> for a thread. A PNE told "busy" scans again after the time it was given,
/// spread so that a crowd does not come back together. The answer to a scan holds a place for the PNE until its hello
/// is due; a PNE that scans again while it holds one keeps it.
/// </summary>
public sealed class RegistrationAdmission(int maxInProgress, TimeSpan busyLag)
{
    private readonly Dictionary<string, long> _heldUntilMs = new(StringComparer.Ordinal);

    /// <summary>0: taken in (a place is held until <paramref name="holdUntilMs"/>); otherwise how long to wait before scanning again.</summary>
    public int Answer(string deviceId, int inProgress, TimeSpan lag, long nowMs, long holdUntilMs, Random random)
    {
        if (busyLag > TimeSpan.Zero && lag > busyLag)
        {
            _heldUntilMs.Remove(deviceId);
            return Backpressure.RetryAfterLag(lag, random);
        }

        if (maxInProgress > 0 && !_heldUntilMs.ContainsKey(deviceId) && inProgress + Held(nowMs) >= maxInProgress)
            return 250 + random.Next(0, 751);
        if (maxInProgress > 0)
            _heldUntilMs[deviceId] = holdUntilMs;
        return 0;
    }

    /// <summary>The PNE's hello arrived: it is counted among the registrations in progress from now on.</summary>
    public void Arrived(string deviceId) => _heldUntilMs.Remove(deviceId);

    private int Held(long nowMs)
    {
        foreach (var (deviceId, until) in _heldUntilMs)
        {
            if (until < nowMs)
                _heldUntilMs.Remove(deviceId);
        }

        return _heldUntilMs.Count;
    }
}
