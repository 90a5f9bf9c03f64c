using Cpns.Actors.Protocol;
using System.Security.Cryptography;

namespace Cpns.Actors.Security;

/// <summary>
/// The key manager's logical key hierarchy for one group: a full binary tree in heap layout (node 1 is the
/// root, node i has children 2i and 2i+1) with n leaves at positions n … 2n−1, so its depth is ⌈log2 n⌉.
/// A join turns leaf n into an internal node over the old leaf and the new one; a leave moves the last leaf
/// into the leaver's place and lifts the last leaf's sibling into their parent's. Either way only the nodes on
/// one path get new keys, each wrapped under both its children: at most 2·⌈log2 n⌉ + 2 wraps.
/// </summary>
public sealed class LkhTree
{
    private readonly string _groupId;
    private readonly Dictionary<int, byte[]> _keys = new();
    private readonly Dictionary<int, string> _memberAt = new();
    private readonly Dictionary<string, int> _positionOf = new(StringComparer.Ordinal);

    public LkhTree(string groupId) => _groupId = groupId;

    public int Count => _positionOf.Count;

    public bool Contains(string memberId) => _positionOf.ContainsKey(memberId);

    public int PositionOf(string memberId) => _positionOf[memberId];

    public ReadOnlySpan<byte> RootKey => Count == 0 ? ReadOnlySpan<byte>.Empty : _keys[1];

    public GroupKey GroupKey(long epoch) => LkhCrypto.GroupKeyFrom(RootKey, _groupId, epoch);

    /// <summary>A leaf's position and every ancestor's, up to the root (heap layout: the parent of i is i / 2).</summary>
    public static IReadOnlyList<int> NodesAbove(int position)
    {
        var nodes = new List<int>();
        for (var node = position; node >= 1; node /= 2)
            nodes.Add(node);
        return nodes;
    }

    /// <summary>The keys a member holds: its leaf and every ancestor, position → key (for a path refresh).</summary>
    public IReadOnlyList<(int Position, byte[] Key)> PathOf(string memberId) =>
        NodesAbove(_positionOf[memberId]).Select(node => (node, _keys[node])).ToList();

    /// <summary>Every member and its leaf position.</summary>
    public IEnumerable<(string MemberId, int Position)> Leaves => _positionOf.Select(kv => (kv.Key, kv.Value));

    /// <summary>The key of a node (a leaf's key is its member's leaf key); the caller must not change it.</summary>
    internal byte[] KeyOf(int node) => _keys[node];

    /// <summary>Replaces the key of an internal node (recovery puts back the keys a rekey made).</summary>
    internal void SetKey(int node, byte[] key)
    {
        if (node < 1 || node >= Count)
            throw new InvalidOperationException($"node {node} is not an internal node of a tree of {Count}");
        if (_keys.Remove(node, out var old))
            CryptographicOperations.ZeroMemory(old);
        _keys[node] = key;
    }

    /// <summary>
    /// Replaces the whole tree: the members at leaves n … 2n−1 in the given order, and the internal nodes' keys from
    /// <paramref name="internalKey"/> (fresh random keys when null).
    /// </summary>
    public void Build(IReadOnlyList<(string MemberId, byte[] LeafKey)> members, Func<int, byte[]>? internalKey = null) =>
        Restore(members.Select((m, i) => (m.MemberId, members.Count + i, m.LeafKey)),
            Enumerable.Range(1, Math.Max(0, members.Count - 1))
                .Select(node => (node, internalKey?.Invoke(node) ?? RandomNumberGenerator.GetBytes(SealedLayout.KeySize))));

    /// <summary>Puts a tree back as it was: members at their positions, internal nodes with their keys.</summary>
    public void Restore(IEnumerable<(string MemberId, int Position, byte[] LeafKey)> leaves, IEnumerable<(int Node, byte[] Key)> internalKeys)
    {
        Clear();
        foreach (var (memberId, position, leafKey) in leaves)
            Place(memberId, position, leafKey);
        foreach (var (node, key) in internalKeys)
            _keys[node] = key;
        var n = Count;
        if (_positionOf.Values.Any(p => p < n || p > 2 * n - 1) || Enumerable.Range(1, Math.Max(0, n - 1)).Any(i => !_keys.ContainsKey(i)))
            throw new InvalidOperationException($"the recorded LKH tree of {_groupId} is not a complete tree of {n} leaves");
    }

    /// <summary>Destroys every key and empties the tree.</summary>
    public void Clear()
    {
        foreach (var key in _keys.Values)
            CryptographicOperations.ZeroMemory(key);
        _keys.Clear();
        _memberAt.Clear();
        _positionOf.Clear();
    }

    public LkhRekey Join(string memberId, ReadOnlySpan<byte> leafKey, long epoch)
    {
        if (_positionOf.ContainsKey(memberId))
            throw new InvalidOperationException($"{memberId} is already in the tree");
        var n = Count;
        var moves = new List<LkhMove>();
        if (n == 0)
        {
            Place(memberId, 1, leafKey.ToArray());
            return new LkhRekey(_groupId, epoch, 1, [new LkhMove(memberId, 1)], Octets.Empty);
        }

        // Leaf n becomes internal: its member moves to 2n, the newcomer takes 2n+1.
        var displaced = _memberAt[n];
        var displacedKey = _keys[n];
        _keys.Remove(n);
        Place(displaced, 2 * n, displacedKey);
        Place(memberId, 2 * n + 1, leafKey.ToArray());
        moves.Add(new LkhMove(displaced, 2 * n));
        moves.Add(new LkhMove(memberId, 2 * n + 1));
        return new LkhRekey(_groupId, epoch, n + 1, moves, Renew(n, epoch));
    }

    public LkhRekey Leave(string memberId, long epoch)
    {
        if (!_positionOf.Remove(memberId, out var position))
            throw new InvalidOperationException($"{memberId} is not in the tree");
        var n = Count + 1;
        _memberAt.Remove(position);
        if (n == 1)
        {
            CryptographicOperations.ZeroMemory(_keys[1]);
            _keys.Remove(1);
            return new LkhRekey(_groupId, epoch, 0, [], Octets.Empty);
        }

        var moves = new List<LkhMove>();
        var last = 2 * n - 1;
        var lastSibling = 2 * n - 2;
        var lastParent = n - 1;
        int renewFrom;
        if (position == last || position == lastSibling)
        {
            // The leaver is one of the last pair: the other one moves up into their parent.
            var stays = position == last ? lastSibling : last;
            MoveLeaf(stays, lastParent, moves);
            renewFrom = lastParent / 2;
        }
        else
        {
            // The last leaf fills the leaver's place; its sibling moves up into their parent.
            MoveLeaf(last, position, moves);
            MoveLeaf(lastSibling, lastParent, moves);
            renewFrom = position / 2;
        }

        return new LkhRekey(_groupId, epoch, n - 1, moves, renewFrom >= 1 ? Renew(renewFrom, epoch) : Octets.Empty);
    }

    private void MoveLeaf(int from, int to, List<LkhMove> moves)
    {
        var member = _memberAt[from];
        var key = _keys[from];
        _memberAt.Remove(from);
        _keys.Remove(from);
        if (_keys.Remove(to, out var overwritten))
            CryptographicOperations.ZeroMemory(overwritten);
        Place(member, to, key);
        moves.Add(new LkhMove(member, to));
    }

    private void Place(string memberId, int position, byte[] key)
    {
        _memberAt[position] = memberId;
        _positionOf[memberId] = position;
        _keys[position] = key;
    }

    /// <summary>Fresh keys for <paramref name="from"/> and every ancestor, each wrapped under its two children, bottom-up.</summary>
    private Octets Renew(int from, long epoch)
    {
        var wraps = new List<LkhWrap>();
        for (var node = from; node >= 1; node /= 2)
        {
            if (_keys.TryGetValue(node, out var old))
                CryptographicOperations.ZeroMemory(old);
            var key = RandomNumberGenerator.GetBytes(SealedLayout.KeySize);
            _keys[node] = key;
            foreach (var child in new[] { 2 * node, 2 * node + 1 })
                wraps.Add(new LkhWrap(node, child, Aead.Seal(_keys[child], key, LkhCrypto.WrapContext(_groupId, epoch, node, child))));
        }

        return LkhRekey.Pack(wraps);
    }
}
