using System.Numerics;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Pne;

/// <summary>
/// Which PN GW a PNE registers through, from the advertisements its scan heard. Only one that takes it in now counts (a
/// new PNE needs a registered PN GW that is not busy; a PNE whose PN GW went away also needs one that takes PNEs from another PN GW).
/// Among those: the most secure PN first, then a dedicated PN GW before a BOTH device, then the lighter load — loads
/// within a factor of two count as equal, so a PNE does not leave a good PN GW for one a few PNEs lighter. Ties are
/// broken by a rendezvous hash of the PNE's id and the PN GW's, so a crowd that starts at once spreads over equal PN
/// GWs instead of all choosing the first. A PN GW the PNE just failed with goes last.
/// </summary>
public static class GatewayChoice
{
    public static IReadOnlyList<GatewayAdvertisement> Rank(string deviceId, IEnumerable<GatewayAdvertisement> heard, bool moving,
        IReadOnlySet<string> failed) =>
        heard
            .Where(a => a.AcceptsNewPnes && !a.Busy && (!moving || a.AcceptsMovingPnes))
            .DistinctBy(a => a.GatewayId, StringComparer.Ordinal)
            .OrderBy(a => failed.Contains(a.GatewayId))
            .ThenByDescending(a => a.PnSecurity)
            .ThenBy(a => a.Mode == EntityKind.PnGateway ? 0 : 1)
            .ThenBy(a => LoadClass(a.Load))
            .ThenBy(a => Rendezvous(deviceId, a.GatewayId))
            .ToList();

    /// <summary>0 for an empty PN GW, then one class per doubling (1, 2–3, 4–7, …).</summary>
    public static int LoadClass(int load) => load <= 0 ? 0 : BitOperations.Log2((uint)load) + 1;

    /// <summary>FNV-1a over both ids, mixed: the same in every process, unlike <see cref="string.GetHashCode()"/>.</summary>
    private static ulong Rendezvous(string deviceId, string gatewayId)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in deviceId + "\n" + gatewayId)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }

        // A final mix (SplitMix64's), so ids that differ only in their last characters still order at random.
        hash = (hash ^ (hash >> 30)) * 0xBF58476D1CE4E5B9UL;
        hash = (hash ^ (hash >> 27)) * 0x94D049BB133111EBUL;
        return hash ^ (hash >> 31);
    }
}
