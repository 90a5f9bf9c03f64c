using Cpns.Actors.Protocol;

namespace Cpns.Actors.Gateway;

/// <summary>
/// Which PNEs of the PN can be reached: any authenticated uplink makes a PNE reachable (and awake) again; a PNE that says
/// it goes to sleep, or is not heard from for the configured number of heartbeat intervals, is not. Every method returns
/// the changes it made, for the PN GW's functions and the server's status function to hear.
/// </summary>
public sealed class PnLinks
{
    private sealed class Link
    {
        public long LastSeenMs;
        public bool Reachable = true;
        public bool Sleeping;
    }

    private readonly Dictionary<string, Link> _links = new(StringComparer.Ordinal);

    public bool Knows(string pneId) => _links.ContainsKey(pneId);

    public PneReachability? Heard(string pneId, long nowMs)
    {
        if (!_links.TryGetValue(pneId, out var link))
            _links[pneId] = link = new Link();
        link.LastSeenMs = nowMs;
        link.Sleeping = false;
        return Set(pneId, link, reachable: true);
    }

    public PneReachability? FellAsleep(string pneId)
    {
        if (!_links.TryGetValue(pneId, out var link))
            return null;
        link.Sleeping = true;
        return Set(pneId, link, reachable: false);
    }

    /// <summary>The PNEs still counted reachable that were last heard before <paramref name="silentSinceMs"/>, now unreachable.</summary>
    public List<PneReachability> Silent(long silentSinceMs)
    {
        var changes = new List<PneReachability>();
        foreach (var (pneId, link) in _links)
        {
            if (link.Reachable && link.LastSeenMs < silentSinceMs && Set(pneId, link, reachable: false) is { } change)
                changes.Add(change);
        }

        return changes;
    }

    public void Forget(string pneId) => _links.Remove(pneId);

    public Reachability Of(string deviceId) => _links.TryGetValue(deviceId, out var link)
        ? new Reachability(deviceId, link.Reachable, link.Sleeping, link.LastSeenMs)
        : new Reachability(deviceId, false, false, 0);

    // A sleeping PNE's "unreachable" is told again: it differs from a silent one's.
    private static PneReachability? Set(string pneId, Link link, bool reachable)
    {
        if (link.Reachable == reachable && !(!reachable && link.Sleeping))
            return null;
        link.Reachable = reachable;
        return new PneReachability(pneId, reachable, link.Sleeping);
    }
}
