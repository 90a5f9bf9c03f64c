using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The group keys a PN GW or PNE holds: per group the current epoch and the one before it, which stays usable
/// for the grace window after the newer one arrived. Owned by one actor.
/// </summary>
public sealed class GroupKeyRing
{
    public sealed record HeldEpoch(GroupKey Key, IReadOnlyList<string> LocalMembers, EpochAnnouncement Announcement, long InstalledAtMs);

    private sealed class Held
    {
        public readonly SortedDictionary<long, HeldEpoch> Epochs = new();
        public long? RevokedAt;
        public long FirstEpoch = long.MaxValue;
    }

    private readonly Dictionary<string, Held> _groups = new(StringComparer.Ordinal);

    // Per group, the epoch through which the holder dropped its keys when it left: a late delivery of one is not installed.
    private readonly Dictionary<string, long> _droppedThrough = new(StringComparer.Ordinal);

    public IEnumerable<string> GroupIds => _groups.Keys;

    /// <summary>Installs an epoch; false if it is already held, or older than what a revocation or newer epochs allow.</summary>
    public bool Install(GroupKey key, IReadOnlyList<string> localMembers, EpochAnnouncement announcement, long nowMs)
    {
        if (key.Epoch <= _droppedThrough.GetValueOrDefault(key.GroupId))
            return false;
        if (!_groups.TryGetValue(key.GroupId, out var held))
            _groups[key.GroupId] = held = new Held();
        if (held.RevokedAt is { } revokedAt)
        {
            if (key.Epoch <= revokedAt)
                return false;
            held.RevokedAt = null;
        }

        if (held.Epochs.ContainsKey(key.Epoch))
            return false;
        if (held.Epochs.Count > 0 && key.Epoch < held.Epochs.Keys.Last() - 1)
            return false;

        held.Epochs[key.Epoch] = new HeldEpoch(key, localMembers, announcement, nowMs);
        held.FirstEpoch = Math.Min(held.FirstEpoch, key.Epoch);
        while (held.Epochs.Count > 2)
        {
            var oldest = held.Epochs.Keys.First();
            held.Epochs[oldest].Key.Dispose();
            held.Epochs.Remove(oldest);
        }

        return true;
    }

    public HeldEpoch? Current(string groupId) =>
        _groups.TryGetValue(groupId, out var held) && held.Epochs.Count > 0 ? held.Epochs.Values.Last() : null;

    /// <summary>The epoch if it is current, or the previous one within the grace window; otherwise why not.</summary>
    public (HeldEpoch? Epoch, KeyError? Error) Get(string groupId, long epoch, long nowMs, TimeSpan grace)
    {
        if (!_groups.TryGetValue(groupId, out var held))
            return (null, KeyError.UnknownGroup);
        if (held.RevokedAt is not null)
            return (null, KeyError.Revoked);
        if (!held.Epochs.TryGetValue(epoch, out var found))
        {
            // An epoch from before this holder's first one was never its to have; one it held and let go is stale.
            if (epoch < held.FirstEpoch)
                return (null, KeyError.UnknownEpoch);
            return (null, held.Epochs.Count > 0 && epoch < held.Epochs.Keys.Last() ? KeyError.StaleEpoch : KeyError.NotYetAvailable);
        }
        var newer = held.Epochs.Where(e => e.Key > epoch).Select(e => e.Value).FirstOrDefault();
        if (newer is not null && nowMs - newer.InstalledAtMs > grace.TotalMilliseconds)
            return (null, KeyError.StaleEpoch);
        return (found, null);
    }

    /// <summary>Destroys the group's keys up to an epoch; a revocation also refuses those epochs later.</summary>
    public void Drop(string groupId, long upToEpoch, bool revoked, bool leftGroup = false)
    {
        if (leftGroup)
            _droppedThrough[groupId] = Math.Max(_droppedThrough.GetValueOrDefault(groupId), upToEpoch);
        if (!_groups.TryGetValue(groupId, out var held))
        {
            if (!revoked)
                return;
            _groups[groupId] = held = new Held();
        }

        foreach (var epoch in held.Epochs.Keys.Where(e => e <= upToEpoch).ToList())
        {
            held.Epochs[epoch].Key.Dispose();
            held.Epochs.Remove(epoch);
        }

        if (revoked)
            held.RevokedAt = Math.Max(upToEpoch, held.RevokedAt ?? 0);
        else if (held.Epochs.Count == 0)
            _groups.Remove(groupId);
    }

    public HeldGroupKey State(string groupId, string holderId)
    {
        if (!_groups.TryGetValue(groupId, out var held))
            return new HeldGroupKey(groupId, holderId, null, null, [], false);
        var current = held.Epochs.Count > 0 ? held.Epochs.Values.Last() : null;
        return new HeldGroupKey(groupId, holderId, current?.Key.Epoch, current?.Key.KeyCheck, held.Epochs.Keys.ToList(),
            held.RevokedAt is not null);
    }
}
