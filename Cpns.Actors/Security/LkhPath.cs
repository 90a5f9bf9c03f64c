using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// One member's whole path in an LKH tree — its leaf key and every ancestor's key, as of the tree of
/// <paramref name="TreeEpoch"/> — sealed for that member alone (ephemeral-static, by the key manager). A member
/// gets it with a key delivered to it alone (when the tree is built, or after it missed a rekey) and can then
/// follow the rekey broadcasts.
/// </summary>
public sealed record LkhPath(long TreeEpoch, int Position, int Size, Octets SealedKeys) : ICpnsMessage
{
    private const int EntryBytes = 4 + Aead.KeySize;

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

    /// <summary>The path's keys, or null if it was not sealed for this recipient and group (or was changed).</summary>
    public IReadOnlyList<(int Node, byte[] Key)>? Open(PairwiseKeys recipient, string sealerId, Octets sealerAgreementKey, string groupId)
    {
        var recipientId = recipient.Self.DeviceId;
        var plain = recipient.OpenFrom(sealerId, sealerAgreementKey, SealedKeys, Context(groupId, recipientId, TreeEpoch, Position, Size));
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
