using Cpns.Actors.Security;
using System.Security.Cryptography;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The logical key hierarchies a key manager keeps for its large push groups. The leaves of a group's tree are the
/// PN GWs its key goes to — the holders the server's CSKMF delivers to; each carries the key on into its own PN. A
/// group enters LKH when it reaches more than <c>threshold</c> PN GWs and leaves it again below half of that (so a
/// group near the threshold does not flap). Each epoch either builds the tree (every PN GW then gets its path with a
/// key wrapped for it alone) or changes it by a few joins and leaves, O(log n) wraps each, which one broadcast carries
/// to every PN GW. Key material is kept only sealed under the KEK in what is persisted. Owned by one actor.
/// </summary>
public sealed class LkhKeyTrees(KeyEncryptionKey kek, int threshold)
{
    /// <summary>More joins and leaves than this in one epoch rebuild the tree instead (the broadcast would get big).</summary>
    public const int MaxIncrementalChanges = 16;

    private sealed class GroupTree(string groupId)
    {
        public readonly LkhTree Tree = new(groupId);
        public readonly Dictionary<string, Octets> AgreementOf = new(StringComparer.Ordinal);
        public long TreeEpoch;
    }

    private readonly Dictionary<string, GroupTree> _groups = new(StringComparer.Ordinal);

    public int Count => _groups.Count;

    public bool Has(string groupId) => _groups.ContainsKey(groupId);

    public bool Contains(string groupId, string memberId) => _groups.TryGetValue(groupId, out var g) && g.Tree.Contains(memberId);

    /// <summary>
    /// The tree of <paramref name="groupId"/> for epoch <paramref name="epoch"/> with exactly <paramref name="recipients"/>
    /// as leaves, and the group key wrapped under its root; null when the group is keyed per PN GW (its tree, if it
    /// had one, is gone). The tree changes here, before the record is persisted: its keys are fresh randomness, and
    /// recovery rebuilds them from the record. Leaf keys are fresh randomness too: a PN GW learns its leaf only in its
    /// path, sealed for it alone, so a leaf cannot be worked out later from anyone's long-term key.
    /// </summary>
    public LkhEpochRecord? Advance(string groupId, long epoch, GroupKey key, IReadOnlyList<KeyDeliveryTarget> recipients)
    {
        var existing = _groups.GetValueOrDefault(groupId);
        var wanted = recipients.Count > 0 && recipients.Count > (existing is null ? threshold : threshold / 2);
        if (!wanted)
        {
            Drop(groupId);
            return null;
        }

        var desired = recipients.ToDictionary(t => t.GatewayId, t => t.GatewayAgreementKey, StringComparer.Ordinal);
        if (existing is null)
            return Rebuild(_groups[groupId] = new GroupTree(groupId), groupId, epoch, key, desired);

        var left = existing.AgreementOf
            .Where(kv => !desired.TryGetValue(kv.Key, out var agreement) || agreement != kv.Value)
            .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        var changedKey = left.ToHashSet(StringComparer.Ordinal);
        var joining = desired.Where(kv => !existing.AgreementOf.ContainsKey(kv.Key) || changedKey.Contains(kv.Key))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToList();
        if (left.Count + joining.Count > MaxIncrementalChanges || left.Count >= existing.Tree.Count)
            return Rebuild(existing, groupId, epoch, key, desired);
        return Change(existing, groupId, epoch, key, left, joining);
    }

    /// <summary>
    /// One membership change of a group that has a tree: <paramref name="leaving"/> go, <paramref name="joining"/> (with
    /// their agreement keys) come, one step each, O(log n) wraps per step. This is the key manager's whole work per
    /// rekey (what <c>cpns bench rekey</c> measures); <see cref="Advance"/> works out the change from the target list.
    /// A joining member cannot follow the broadcast (it holds no leaf yet): it gets its path with a key sealed for it.
    /// </summary>
    public LkhEpochRecord Change(string groupId, long epoch, GroupKey key, IReadOnlyList<string> leaving,
        IReadOnlyList<(string MemberId, Octets AgreementKey)> joining)
    {
        var existing = _groups.GetValueOrDefault(groupId) ?? throw new InvalidOperationException($"{groupId} has no LKH tree");
        return Change(existing, groupId, epoch, key, leaving, joining);
    }

    private static byte[] NewLeafKey() => RandomNumberGenerator.GetBytes(SealedLayout.KeySize);

    private LkhEpochRecord Change(GroupTree existing, string groupId, long epoch, GroupKey key, IReadOnlyList<string> left,
        IReadOnlyList<(string MemberId, Octets AgreementKey)> joining)
    {
        var baseTreeEpoch = existing.TreeEpoch;
        var steps = new List<LkhRekey>();
        foreach (var memberId in left)
        {
            steps.Add(existing.Tree.Leave(memberId, epoch));
            existing.AgreementOf.Remove(memberId);
        }

        var joined = new List<LkhLeafRecord>();
        foreach (var (memberId, agreementKey) in joining)
        {
            var leafKey = NewLeafKey();
            steps.Add(existing.Tree.Join(memberId, leafKey, epoch));
            existing.AgreementOf[memberId] = agreementKey;
            joined.Add(new LkhLeafRecord(memberId, agreementKey, kek.Seal(leafKey, LeafLabel(groupId, memberId, epoch))));
            CryptographicOperations.ZeroMemory(leafKey); // the tree keeps its own copy
        }

        if (steps.Count > 0)
            existing.TreeEpoch = epoch;
        var renewed = steps.SelectMany(s => s.Wraps()).Select(w => w.Node).Distinct()
            .Where(node => node < existing.Tree.Count).Order().ToList();
        return new LkhEpochRecord(baseTreeEpoch, existing.TreeEpoch, false, left, joined,
            SealNodes(existing, groupId, renewed), steps, key.WrapUnder(existing.Tree.RootKey, LkhCrypto.RootRecipient));
    }

    private LkhEpochRecord Rebuild(GroupTree group, string groupId, long epoch, GroupKey key, Dictionary<string, Octets> desired)
    {
        var members = desired.Keys.Order(StringComparer.Ordinal).Select(id => (id, NewLeafKey())).ToList();
        group.Tree.Build(members);
        group.AgreementOf.Clear();
        foreach (var (id, _) in members)
            group.AgreementOf[id] = desired[id];
        group.TreeEpoch = epoch;
        var joined = members.Select(m => new LkhLeafRecord(m.id, desired[m.id], kek.Seal(m.Item2, LeafLabel(groupId, m.id, epoch))))
            .ToList();
        return new LkhEpochRecord(0, epoch, true, [], joined, SealNodes(group, groupId, Enumerable.Range(1, members.Count - 1)), [],
            key.WrapUnder(group.Tree.RootKey, LkhCrypto.RootRecipient));
    }

    private List<LkhNodeKeyRecord> SealNodes(GroupTree group, string groupId, IEnumerable<int> nodes) =>
        nodes.Select(node => new LkhNodeKeyRecord(node, kek.Seal(group.Tree.KeyOf(node), NodeLabel(groupId, group.TreeEpoch, node))))
            .ToList();

    /// <summary>
    /// Recovery: does again what a persisted epoch did to the tree, with the keys it recorded. An epoch without a record
    /// drops the tree; a record that does not follow from the tree held (a gap in the journal) drops it too, and the
    /// group's next epoch builds a new one. False then.
    /// </summary>
    public bool Apply(string groupId, LkhEpochRecord? record)
    {
        if (record is null)
        {
            Drop(groupId);
            return true;
        }

        try
        {
            if (record.Rebuilt)
            {
                var group = new GroupTree(groupId) { TreeEpoch = record.TreeEpoch };
                var nodeKeys = OpenNodes(groupId, record);
                group.Tree.Build(record.Joined.Select(j => (j.MemberId, OpenLeaf(groupId, j, record.TreeEpoch))).ToList(),
                    node => nodeKeys[node]);
                foreach (var joined in record.Joined)
                    group.AgreementOf[joined.MemberId] = joined.AgreementKey;
                Drop(groupId);
                _groups[groupId] = group;
                return true;
            }

            if (!_groups.TryGetValue(groupId, out var existing) || existing.TreeEpoch != record.BaseTreeEpoch)
            {
                Drop(groupId);
                return false;
            }

            foreach (var memberId in record.Left)
            {
                existing.Tree.Leave(memberId, record.TreeEpoch);
                existing.AgreementOf.Remove(memberId);
            }

            foreach (var joined in record.Joined)
            {
                var leafKey = OpenLeaf(groupId, joined, record.TreeEpoch);
                existing.Tree.Join(joined.MemberId, leafKey, record.TreeEpoch);
                CryptographicOperations.ZeroMemory(leafKey);
                existing.AgreementOf[joined.MemberId] = joined.AgreementKey;
            }

            existing.TreeEpoch = record.TreeEpoch;
            foreach (var (node, key) in OpenNodes(groupId, record))
                existing.Tree.SetKey(node, key);
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or CryptographicException)
        {
            Drop(groupId);
            return false;
        }
    }

    private Dictionary<int, byte[]> OpenNodes(string groupId, LkhEpochRecord record) =>
        record.NodeKeys.ToDictionary(n => n.Node, n => Open(n.KeyUnderKek, NodeLabel(groupId, record.TreeEpoch, n.Node)));

    private byte[] OpenLeaf(string groupId, LkhLeafRecord leaf, long treeEpoch) =>
        Open(leaf.LeafKeyUnderKek, LeafLabel(groupId, leaf.MemberId, treeEpoch));

    private byte[] Open(Octets sealedKey, string label) =>
        kek.Open(sealedKey, label) ?? throw new CryptographicException($"{label} does not open under this KEK");

    public void Drop(string groupId)
    {
        if (_groups.Remove(groupId, out var group))
            group.Tree.Clear();
    }

    /// <summary>A member's path as the tree stands, sealed by <paramref name="sealer"/> for the recipient alone; null if it is no leaf.</summary>
    public LkhPath? PathFor(string groupId, string memberId, PairwiseKeys sealer, string recipientId, Octets recipientAgreementKey)
    {
        using var keys = PathKeysFor(groupId, memberId);
        return keys?.SealFor(sealer, recipientId, recipientAgreementKey);
    }

    /// <summary>A member's path as the tree stands, copied to be sealed elsewhere; null if it is no leaf.</summary>
    public LkhPathKeys? PathKeysFor(string groupId, string memberId) =>
        _groups.TryGetValue(groupId, out var group) && group.Tree.Contains(memberId)
            ? LkhPathKeys.CopyOf(groupId, group.TreeEpoch, group.Tree.PositionOf(memberId), group.Tree.Count, group.Tree.PathOf(memberId))
            : null;

    public LkhState State(string groupId) =>
        _groups.TryGetValue(groupId, out var group)
            ? new LkhState(groupId, group.TreeEpoch, group.Tree.Count,
                group.Tree.Leaves.ToDictionary(l => l.MemberId, l => l.Position, StringComparer.Ordinal))
            : new LkhState(groupId, 0, 0, new Dictionary<string, int>());

    public IReadOnlyList<LkhTreeSnapshot> Snapshot() => _groups.Select(kv =>
    {
        var (groupId, group) = (kv.Key, kv.Value);
        var leaves = group.Tree.Leaves.OrderBy(l => l.Position).Select(l => new LkhLeafSnapshot(l.MemberId, l.Position,
            group.AgreementOf[l.MemberId], kek.Seal(group.Tree.KeyOf(l.Position), LeafLabel(groupId, l.MemberId, group.TreeEpoch)))).ToList();
        return new LkhTreeSnapshot(groupId, group.TreeEpoch, leaves, SealNodes(group, groupId, Enumerable.Range(1, group.Tree.Count - 1)));
    }).ToList();

    public void Restore(IReadOnlyList<LkhTreeSnapshot> snapshots)
    {
        foreach (var groupId in _groups.Keys.ToList())
            Drop(groupId);
        foreach (var snapshot in snapshots)
        {
            var group = new GroupTree(snapshot.GroupId) { TreeEpoch = snapshot.TreeEpoch };
            group.Tree.Restore(
                snapshot.Leaves.Select(l => (l.MemberId, l.Position,
                    Open(l.LeafKeyUnderKek, LeafLabel(snapshot.GroupId, l.MemberId, snapshot.TreeEpoch)))),
                snapshot.Nodes.Select(n => (n.Node, Open(n.KeyUnderKek, NodeLabel(snapshot.GroupId, snapshot.TreeEpoch, n.Node)))));
            foreach (var leaf in snapshot.Leaves)
                group.AgreementOf[leaf.MemberId] = leaf.AgreementKey;
            _groups[snapshot.GroupId] = group;
        }
    }

    private static string LeafLabel(string groupId, string memberId, long treeEpoch) => $"lkh-leaf|{groupId}|{memberId}|{treeEpoch}";

    private static string NodeLabel(string groupId, long treeEpoch, int node) => $"lkh-node|{groupId}|{treeEpoch}|{node}";
}
