using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>Seals an LKH path for one member and opens it there (ephemeral-static, by the key manager).</summary>
public static class LkhPathSealing
{
    private const int EntryBytes = 4 + SealedLayout.KeySize;

    extension(LkhPath)
    {
        public static LkhPath Seal(PairwiseKeys sealer, string recipientId, Octets recipientAgreementKey, string groupId, long treeEpoch,
            int position, int size, IReadOnlyList<(int Node, byte[] Key)> path)
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
                    sealer.SealFor(recipientId, recipientAgreementKey, plain, Context(groupId, recipientId, treeEpoch, position, size)));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plain);
            }
        }
    }

    extension(LkhPath sealedPath)
    {
        /// <summary>The path's keys, or null if it was not sealed for this recipient and group (or was changed).</summary>
        public IReadOnlyList<(int Node, byte[] Key)>? Open(PairwiseKeys recipient, string sealerId, Octets sealerAgreementKey, string groupId)
        {
            var (treeEpoch, position, size, sealedKeys) = sealedPath;
            var recipientId = recipient.Self.DeviceId;
            var plain = recipient.OpenFrom(sealerId, sealerAgreementKey, sealedKeys, Context(groupId, recipientId, treeEpoch, position, size));
            if (plain is null || plain.Length % EntryBytes != 0)
                return null;
            try
            {
                var path = new List<(int, byte[])>();
                for (var offset = 0; offset < plain.Length; offset += EntryBytes)
                    path.Add((BinaryPrimitives.ReadInt32BigEndian(plain.AsSpan(offset)), plain.AsSpan(offset + 4, SealedLayout.KeySize).ToArray()));
                return size >= 1 && position >= size && position <= 2 * size - 1 &&
                       path.Select(p => p.Item1).SequenceEqual(LkhTree.NodesAbove(position))
                    ? path
                    : null;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plain);
            }
        }
    }

    private static byte[] Context(string groupId, string recipientId, long treeEpoch, int position, int size) =>
        Encoding.UTF8.GetBytes($"cpns/lkh/path/v1|{groupId}|{recipientId}|{treeEpoch}|{position}|{size}");
}

/// <summary>
/// A member's path keys as its tree stood when they were copied, to seal away from the tree (the tree's keys change
/// with its next epoch while the copy is sealed); zeroed once sealed or disposed.
/// </summary>
public sealed class LkhPathKeys(string groupId, long treeEpoch, int position, int size, IReadOnlyList<(int Node, byte[] Key)> path)
    : IDisposable
{
    public static LkhPathKeys CopyOf(string groupId, long treeEpoch, int position, int size, IReadOnlyList<(int Node, byte[] Key)> path) =>
        new(groupId, treeEpoch, position, size, path.Select(p => (p.Node, (byte[])p.Key.Clone())).ToList());

    /// <summary>The path sealed by <paramref name="sealer"/> for the recipient alone.</summary>
    public LkhPath SealFor(PairwiseKeys sealer, string recipientId, Octets recipientAgreementKey) =>
        LkhPath.Seal(sealer, recipientId, recipientAgreementKey, groupId, treeEpoch, position, size, path);

    internal IReadOnlyList<(int Node, byte[] Key)> Keys => path;

    public void Dispose()
    {
        foreach (var (_, key) in path)
            CryptographicOperations.ZeroMemory(key);
    }
}

