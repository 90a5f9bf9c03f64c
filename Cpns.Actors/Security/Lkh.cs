using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>One new node key, encrypted under the key of one of that node's children (positions in the new tree).</summary>
public readonly record struct LkhWrap(int Node, int Under, Octets Ciphertext);

/// <summary>A member whose leaf moved to another position of the tree.</summary>
public sealed record LkhMove(string MemberId, int Position) : ICpnsMessage;

/// <summary>
/// What every member of an LKH group receives on a membership change: the size of the new tree, which leaves
/// moved, and the new node keys wrapped bottom-up. O(log n) wraps, packed as 8 + 60 bytes each.
/// </summary>
public sealed record LkhRekey(string GroupId, long Epoch, int Size, IReadOnlyList<LkhMove> Moves, Octets PackedWraps)
    : ICpnsMessage, IWithGroupId
{
    public const int WrapBytes = 8 + Aead.Overhead + Aead.KeySize;

    public int WrapCount => PackedWraps.Length / WrapBytes;

    public IEnumerable<LkhWrap> Wraps()
    {
        for (var offset = 0; offset < PackedWraps.Length; offset += WrapBytes)
        {
            var span = PackedWraps.Span.Slice(offset, WrapBytes);
            yield return new LkhWrap(BinaryPrimitives.ReadInt32BigEndian(span), BinaryPrimitives.ReadInt32BigEndian(span[4..]),
                Octets.CopyFrom(span[8..]));
        }
    }

    public static Octets Pack(IReadOnlyList<LkhWrap> wraps)
    {
        var packed = new byte[wraps.Count * WrapBytes];
        for (var i = 0; i < wraps.Count; i++)
        {
            var span = packed.AsSpan(i * WrapBytes, WrapBytes);
            BinaryPrimitives.WriteInt32BigEndian(span, wraps[i].Node);
            BinaryPrimitives.WriteInt32BigEndian(span[4..], wraps[i].Under);
            wraps[i].Ciphertext.Span.CopyTo(span[8..]);
        }

        return Octets.Own(packed);
    }
}

/// <summary>
/// One member's whole path in an LKH tree — its leaf key and every ancestor's key, as of the tree of
/// <paramref name="TreeEpoch"/> — sealed for that member alone under its pairwise key with the key manager. A member
/// gets it with a key delivered to it alone (when the tree is built, or after it missed a rekey) and can then
/// follow the rekey broadcasts.
/// </summary>
public sealed record LkhPath(long TreeEpoch, int Position, int Size, Octets SealedKeys) : ICpnsMessage
{
    private const int EntryBytes = 4 + Aead.KeySize;

    public static LkhPath Seal(ReadOnlySpan<byte> pairwiseKey, string groupId, string recipientId, long treeEpoch, int position,
        int size, IReadOnlyList<(int Node, byte[] Key)> path)
    {
        var plain = new byte[path.Count * EntryBytes];
        try
        {
            for (var i = 0; i < path.Count; i++)
            {
                var entry = plain.AsSpan(i * EntryBytes, EntryBytes);
                BinaryPrimitives.WriteInt32BigEndian(entry, path[i].Node);
                path[i].Key.CopyTo(entry[4..]);
            }

            return new LkhPath(treeEpoch, position, size,
                Aead.Seal(pairwiseKey, plain, Context(groupId, recipientId, treeEpoch, position, size)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    /// <summary>The path's keys, or null if it was not sealed for this recipient and group (or was changed).</summary>
    public IReadOnlyList<(int Node, byte[] Key)>? Open(ReadOnlySpan<byte> pairwiseKey, string groupId, string recipientId)
    {
        var plain = Aead.Open(pairwiseKey, SealedKeys, Context(groupId, recipientId, TreeEpoch, Position, Size));
        if (plain is null || plain.Length % EntryBytes != 0)
            return null;
        try
        {
            var path = new List<(int, byte[])>();
            for (var offset = 0; offset < plain.Length; offset += EntryBytes)
                path.Add((BinaryPrimitives.ReadInt32BigEndian(plain.AsSpan(offset)), plain.AsSpan(offset + 4, Aead.KeySize).ToArray()));
            return Size >= 1 && Position >= Size && Position <= 2 * Size - 1 &&
                   path.Select(p => p.Item1).SequenceEqual(LkhTree.NodesAbove(Position))
                ? path
                : null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    private static byte[] Context(string groupId, string recipientId, long treeEpoch, int position, int size) =>
        Encoding.UTF8.GetBytes($"cpns/lkh/path/v1|{groupId}|{recipientId}|{treeEpoch}|{position}|{size}");
}

/// <summary>Shared rules of the LKH: the wrap's associated data, and the group key an epoch's root key gives.</summary>
public static class LkhCrypto
{
    /// <summary>The group key of an epoch travels wrapped under the tree's root key for this "recipient".</summary>
    public const string RootRecipient = "lkh-root";

    public static byte[] WrapContext(string groupId, long epoch, int node, int under) =>
        Encoding.UTF8.GetBytes($"cpns/lkh/v1|{groupId}|{epoch}|{node}|{under}");

    public static GroupKey GroupKeyFrom(ReadOnlySpan<byte> rootKey, string groupId, long epoch) =>
        GroupKey.FromMaterial(groupId, epoch, HKDF.DeriveKey(HashAlgorithmName.SHA256, rootKey.ToArray(), Aead.KeySize,
            "cpns/lkh/group-key"u8.ToArray(), Encoding.UTF8.GetBytes($"{groupId}|{epoch}")));

    /// <summary>A member's leaf key: from its pairwise key with the key manager, bound to the group and the join epoch.</summary>
    public static byte[] LeafKey(ReadOnlySpan<byte> pairwiseKey, string groupId, string memberId, long joinEpoch) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, pairwiseKey.ToArray(), Aead.KeySize, "cpns/lkh/leaf"u8.ToArray(),
            Encoding.UTF8.GetBytes($"{groupId}|{memberId}|{joinEpoch}"));
}

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
                .Select(node => (node, internalKey?.Invoke(node) ?? RandomNumberGenerator.GetBytes(Aead.KeySize))));

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
            var key = RandomNumberGenerator.GetBytes(Aead.KeySize);
            _keys[node] = key;
            foreach (var child in new[] { 2 * node, 2 * node + 1 })
                wraps.Add(new LkhWrap(node, child, Aead.Seal(_keys[child], key, LkhCrypto.WrapContext(_groupId, epoch, node, child))));
        }

        return LkhRekey.Pack(wraps);
    }
}

/// <summary>
/// A member's side of an LKH group: its position, and the keys of its leaf and ancestors. It applies each
/// rekey in order; a member that missed one needs a path refresh from the key manager.
/// </summary>
public sealed class LkhMember
{
    private readonly string _groupId;
    private readonly string _memberId;
    private readonly Dictionary<int, byte[]> _keys = new();

    public LkhMember(string groupId, string memberId, ReadOnlySpan<byte> leafKey)
    {
        _groupId = groupId;
        _memberId = memberId;
        LeafKey = leafKey.ToArray();
    }

    /// <summary>A member that holds nothing yet: it enters the tree by a join it follows, or by a path refresh.</summary>
    public LkhMember(string groupId, string memberId)
    {
        _groupId = groupId;
        _memberId = memberId;
        LeafKey = [];
    }

    public byte[] LeafKey { get; private set; }

    public int Position { get; private set; }

    public int Size { get; private set; }

    /// <summary>The epoch of the last change of the tree this member's keys belong to (0: none yet).</summary>
    public long TreeEpoch { get; private set; }

    public bool InTree => Position > 0;

    /// <summary>The root key, if this member holds it.</summary>
    public byte[]? RootKey => InTree && _keys.TryGetValue(1, out var root) ? root : null;

    public GroupKey? GroupKey(long epoch) => RootKey is { } root ? LkhCrypto.GroupKeyFrom(root, _groupId, epoch) : null;

    /// <summary>The keys this member holds, by node, leaf first (its path, when it is in step with the tree).</summary>
    public IReadOnlyList<(int Node, byte[] Key)> HeldKeys => _keys.OrderByDescending(kv => kv.Key).Select(kv => (kv.Key, kv.Value)).ToList();

    /// <summary>Applies one rekey; false if it cannot be followed (a missed rekey, or this member was removed).</summary>
    public bool Apply(LkhRekey rekey)
    {
        foreach (var move in rekey.Moves)
        {
            if (move.MemberId != _memberId)
                continue;
            if (Position == 0 && move.Position >= 1)
                _keys.Clear();
            Position = move.Position;
            _keys[Position] = LeafKey;
        }

        Size = rekey.Size;
        if (!InTree || Position < Size || Position > 2 * Size - 1)
        {
            Leave();
            return false;
        }

        var wraps = rekey.Wraps().ToLookup(w => w.Node);
        var path = LkhTree.NodesAbove(Position);
        for (var i = 1; i < path.Count; i++)
        {
            var node = path[i];
            var below = path[i - 1];
            var wrap = wraps[node].FirstOrDefault(w => w.Under == below);
            if (wrap.Ciphertext is null)
                continue;
            if (!_keys.TryGetValue(below, out var underKey))
                return false;
            var key = Aead.Open(underKey, wrap.Ciphertext, LkhCrypto.WrapContext(_groupId, rekey.Epoch, node, below));
            if (key is null)
                return false;
            _keys[node] = key;
        }

        foreach (var stale in _keys.Keys.Except(path).ToList())
            _keys.Remove(stale);
        return path.All(_keys.ContainsKey);
    }

    /// <summary>
    /// Follows the steps one epoch made to the tree, from the tree of <paramref name="baseTreeEpoch"/> to that of
    /// <paramref name="treeEpoch"/>. A member that does not hold the base tree can only enter by a join among the
    /// steps, with the leaf key <paramref name="joinLeafKey"/> gives. The new tree is taken only if
    /// <paramref name="acceptRoot"/> accepts its root key (the epoch's group key opens under it). All or nothing: on
    /// false this member is as it was.
    /// </summary>
    public bool Follow(long baseTreeEpoch, long treeEpoch, IReadOnlyList<LkhRekey> steps, Func<byte[]> joinLeafKey,
        Func<byte[], bool>? acceptRoot = null)
    {
        if (steps.Count == 0)
            return InTree && TreeEpoch == treeEpoch && RootKey is { } held && (acceptRoot?.Invoke(held) ?? true);
        var trial = Copy();
        if (!trial.InTree || trial.TreeEpoch != baseTreeEpoch)
            trial.Leave();
        foreach (var step in steps)
        {
            if (!trial.InTree)
            {
                if (!step.Moves.Any(m => m.MemberId == _memberId))
                    continue;
                trial.LeafKey = joinLeafKey();
            }

            if (!trial.Apply(step))
                return false;
        }

        if (trial.RootKey is not { } root || !(acceptRoot?.Invoke(root) ?? true))
            return false;
        trial.TreeEpoch = treeEpoch;
        Adopt(trial);
        return true;
    }

    /// <summary>Takes a full path from the key manager (after a missed rekey).</summary>
    public void Refresh(int position, int size, IEnumerable<(int Position, byte[] Key)> path)
    {
        _keys.Clear();
        Position = position;
        Size = size;
        foreach (var (node, key) in path)
            _keys[node] = key;
        _keys[position] = LeafKey;
    }

    /// <summary>Takes a full path, its leaf key included, as of the tree of <paramref name="treeEpoch"/>.</summary>
    public void Refresh(long treeEpoch, int position, int size, IReadOnlyList<(int Node, byte[] Key)> path)
    {
        LeafKey = path.Single(p => p.Node == position).Key;
        Refresh(position, size, path);
        TreeEpoch = treeEpoch;
    }

    /// <summary>Every key this member still holds (tests use it to show a removed member learns nothing new).</summary>
    public IEnumerable<byte[]> KnownKeys => _keys.Values;

    /// <summary>Destroys every key held.</summary>
    public void Forget()
    {
        foreach (var key in _keys.Values)
            CryptographicOperations.ZeroMemory(key);
        CryptographicOperations.ZeroMemory(LeafKey);
        Leave();
    }

    /// <summary>Out of the tree (a trial copy shares its arrays with the member, so nothing is zeroed here).</summary>
    private void Leave()
    {
        Position = 0;
        TreeEpoch = 0;
        _keys.Clear();
    }

    private LkhMember Copy()
    {
        var copy = new LkhMember(_groupId, _memberId)
        {
            LeafKey = LeafKey,
            Position = Position,
            Size = Size,
            TreeEpoch = TreeEpoch,
        };
        foreach (var (node, key) in _keys)
            copy._keys[node] = key;
        return copy;
    }

    private void Adopt(LkhMember trial)
    {
        var kept = new HashSet<byte[]>(trial._keys.Values, ReferenceEqualityComparer.Instance) { trial.LeafKey };
        foreach (var replaced in _keys.Values.Append(LeafKey).Where(k => !kept.Contains(k)))
            CryptographicOperations.ZeroMemory(replaced);
        _keys.Clear();
        foreach (var (node, key) in trial._keys)
            _keys[node] = key;
        LeafKey = trial.LeafKey;
        Position = trial.Position;
        Size = trial.Size;
        TreeEpoch = trial.TreeEpoch;
    }
}

/// <summary>The flat scheme LKH replaces: the new group key wrapped once per member under its pairwise key.</summary>
public static class FlatRekey
{
    public static IReadOnlyList<(string MemberId, Octets Wrapped)> Wrap(GroupKey key, IEnumerable<(string MemberId, byte[] PairwiseKey)> members) =>
        members.Select(m => (m.MemberId, key.WrapUnder(m.PairwiseKey, m.MemberId))).ToList();
}
