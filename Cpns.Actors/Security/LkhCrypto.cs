using Cpns.Actors.Protocol;
using System.Security.Cryptography;
using System.Text;

namespace Cpns.Actors.Security;

/// <summary>Shared rules of the LKH: the wrap's associated data, and the group key an epoch's root key gives.</summary>
public static class LkhCrypto
{
    /// <summary>The group key of an epoch travels wrapped under the tree's root key for this "recipient".</summary>
    public const string RootRecipient = "lkh-root";

    public static byte[] WrapContext(string groupId, long epoch, int node, int under) =>
        Encoding.UTF8.GetBytes($"cpns/lkh/v1|{groupId}|{epoch}|{node}|{under}");

    public static GroupKey GroupKeyFrom(ReadOnlySpan<byte> rootKey, string groupId, long epoch) =>
        GroupKey.FromMaterial(groupId, epoch, HKDF.DeriveKey(HashAlgorithmName.SHA256, rootKey.ToArray(), SealedLayout.KeySize,
            "cpns/lkh/group-key"u8.ToArray(), Encoding.UTF8.GetBytes($"{groupId}|{epoch}")));
}
