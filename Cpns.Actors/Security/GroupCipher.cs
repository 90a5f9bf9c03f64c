using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;


public static class GroupCipher
{
    public static GroupCiphertext Encrypt(GroupKey key, string senderId, ReadOnlySpan<byte> plaintext) =>
        new(key.GroupId, key.Epoch, senderId, Aead.Seal(key.Material, plaintext, AssociatedData(key.GroupId, key.Epoch, senderId)));

    /// <summary>The plaintext, or null if the key is not the header's, or anything was changed.</summary>
    public static byte[]? Decrypt(GroupKey key, GroupCiphertext ciphertext)
    {
        if (key.GroupId != ciphertext.GroupId || key.Epoch != ciphertext.Epoch)
            return null;
        return Aead.Open(key.Material, ciphertext.Sealed,
            AssociatedData(ciphertext.GroupId, ciphertext.Epoch, ciphertext.SenderId));
    }

    private static byte[] AssociatedData(string groupId, long epoch, string senderId) =>
        new Transcript("cpns/group-content/v1").Add(groupId).Add(epoch).Add(senderId).Bytes.ToArray();
}
