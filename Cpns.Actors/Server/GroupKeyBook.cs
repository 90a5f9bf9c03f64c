using Cpns.Actors.Security;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// What a group's key manager (the server's CSKMF, or a distributed Group Key Manager) knows of the group's
/// key epochs: the current one and the previous one for its grace window, key material only wrapped under
/// the KEK. Pure state, rebuilt from <see cref="GroupEpochIssuedEvent"/>s and revocations.
/// </summary>
public sealed class GroupKeyBook
{
    private readonly Dictionary<string, Entry> _groups = new();

    private sealed class Entry
    {
        public long LastEpoch;
        public long? RevokedAt;
        public readonly SortedDictionary<long, GroupEpochIssuedEvent> Live = new();
    }

    public IEnumerable<string> GroupIds => _groups.Keys;

    public int Count => _groups.Count;

    public long LastEpoch(string groupId) => _groups.TryGetValue(groupId, out var e) ? e.LastEpoch : 0;

    public bool IsRevoked(string groupId) => _groups.TryGetValue(groupId, out var e) && e.RevokedAt is not null;

    public GroupEpochIssuedEvent? Current(string groupId) =>
        _groups.TryGetValue(groupId, out var e) && e.RevokedAt is null && e.Live.Count > 0 ? e.Live.Values.Last() : null;

    public IReadOnlyList<GroupEpochIssuedEvent> LiveEpochs(string groupId) =>
        _groups.TryGetValue(groupId, out var e) ? e.Live.Values.ToList() : [];

    public void Apply(GroupEpochIssuedEvent issued)
    {
        var entry = EntryFor(issued.GroupId);
        entry.LastEpoch = Math.Max(entry.LastEpoch, issued.Epoch);
        entry.RevokedAt = null;
        entry.Live[issued.Epoch] = issued;
        while (entry.Live.Count > 2)
            entry.Live.Remove(entry.Live.Keys.First());
    }

    public void Apply(GroupKeysRevokedEvent revoked)
    {
        var entry = EntryFor(revoked.GroupId);
        entry.LastEpoch = Math.Max(entry.LastEpoch, revoked.FinalEpoch);
        entry.RevokedAt = revoked.FinalEpoch;
        entry.Live.Clear();
    }

    /// <summary>
    /// The epoch a member may be given now: the current one, or the previous one while its grace window lasts.
    /// </summary>
    public KeyLookup Lookup(string groupId, long epoch, long nowMs, TimeSpan grace)
    {
        if (!_groups.TryGetValue(groupId, out var entry))
            return KeyLookup.Fail(KeyError.UnknownGroup, $"no key for group {groupId}");
        if (entry.RevokedAt is not null)
            return KeyLookup.Fail(KeyError.Revoked, $"group {groupId} was deleted at epoch {entry.RevokedAt}");
        if (!entry.Live.TryGetValue(epoch, out var issued))
        {
            return epoch > entry.LastEpoch
                ? KeyLookup.Fail(KeyError.UnknownEpoch, $"group {groupId} has no epoch {epoch} (last {entry.LastEpoch})")
                : KeyLookup.Fail(KeyError.StaleEpoch, $"epoch {epoch} of {groupId} is no longer usable (last {entry.LastEpoch})");
        }

        var next = entry.Live.Keys.Where(k => k > epoch).Select(k => entry.Live[k]).FirstOrDefault();
        if (next is not null && nowMs - next.IssuedAtMs > grace.TotalMilliseconds)
            return KeyLookup.Fail(KeyError.StaleEpoch,
                $"epoch {epoch} of {groupId} was superseded by {next.Epoch} more than {grace.TotalSeconds:0.#}s ago");
        return KeyLookup.Found(issued);
    }

    public CskmfSnapshot Snapshot() => new(
        _groups.Values.SelectMany(e => e.Live.Values).ToList(),
        _groups.Where(kv => kv.Value.RevokedAt is not null)
            .Select(kv => new GroupKeysRevokedEvent(kv.Key, kv.Value.LastEpoch)).ToList());

    public void Restore(CskmfSnapshot snapshot)
    {
        _groups.Clear();
        foreach (var revoked in snapshot.Revoked)
            Apply(revoked);
        foreach (var issued in snapshot.LiveEpochs.OrderBy(e => e.Epoch))
            Apply(issued);
    }

    private Entry EntryFor(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var entry))
            _groups[groupId] = entry = new Entry();
        return entry;
    }
}

public readonly record struct KeyLookup(GroupEpochIssuedEvent? Epoch, KeyError? Error, string? Detail)
{
    public static KeyLookup Found(GroupEpochIssuedEvent epoch) => new(epoch, null, null);

    public static KeyLookup Fail(KeyError error, string detail) => new(null, error, detail);
}
