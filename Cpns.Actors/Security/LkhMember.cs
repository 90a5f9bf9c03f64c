using Cpns.Actors.Protocol;
using System.Security.Cryptography;

namespace Cpns.Actors.Security;

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

    /// <summary>A member that holds nothing yet: it enters the tree by a path refresh.</summary>
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
    /// <paramref name="treeEpoch"/>. Only a member that holds the base tree can: one that joins gets its path instead.
    /// The new tree is taken only if <paramref name="acceptRoot"/> accepts its root key (the epoch's group key opens
    /// under it). All or nothing: on false this member is as it was.
    /// </summary>
    public bool Follow(long baseTreeEpoch, long treeEpoch, IReadOnlyList<LkhRekey> steps, Func<byte[], bool>? acceptRoot = null)
    {
        if (steps.Count == 0)
            return InTree && TreeEpoch == treeEpoch && RootKey is { } held && (acceptRoot?.Invoke(held) ?? true);
        if (!InTree || TreeEpoch != baseTreeEpoch)
            return false;
        var trial = Copy();
        foreach (var step in steps)
        {
            if (!trial.InTree || !trial.Apply(step))
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
