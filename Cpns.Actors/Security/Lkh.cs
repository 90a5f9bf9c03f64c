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

/// <summary>Shared rules of the LKH: the wrap's associated data, and the group key an epoch's root key gives.</summary>
public static class LkhCrypto
{
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

    /// <summary>The keys a member holds: its leaf and every ancestor, position → key (for a path refresh).</summary>
    public IReadOnlyList<(int Position, byte[] Key)> PathOf(string memberId)
    {
        var path = new List<(int, byte[])>();
        for (var node = _positionOf[memberId]; node >= 1; node /= 2)
            path.Add((node, _keys[node]));
        return path;
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

    public byte[] LeafKey { get; }

    public int Position { get; private set; }

    public int Size { get; private set; }

    public bool InTree => Position > 0;

    /// <summary>The root key, if this member holds it.</summary>
    public byte[]? RootKey => InTree && _keys.TryGetValue(1, out var root) ? root : null;

    public GroupKey? GroupKey(long epoch) => RootKey is { } root ? LkhCrypto.GroupKeyFrom(root, _groupId, epoch) : null;

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
            Forget();
            return false;
        }

        var wraps = rekey.Wraps().ToLookup(w => w.Node);
        var path = new List<int>();
        for (var node = Position; node >= 1; node /= 2)
            path.Add(node);
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

    /// <summary>Every key this member still holds (tests use it to show a removed member learns nothing new).</summary>
    public IEnumerable<byte[]> KnownKeys => _keys.Values;

    private void Forget()
    {
        Position = 0;
        _keys.Clear();
    }
}

/// <summary>The flat scheme LKH replaces: the new group key wrapped once per member under its pairwise key.</summary>
public static class FlatRekey
{
    public static IReadOnlyList<(string MemberId, Octets Wrapped)> Wrap(GroupKey key, IEnumerable<(string MemberId, byte[] PairwiseKey)> members) =>
        members.Select(m => (m.MemberId, key.WrapUnder(m.PairwiseKey, m.MemberId))).ToList();
}
