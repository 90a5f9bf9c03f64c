using System.Security.Cryptography;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The KMC's key-encryption key: group keys are only ever stored and passed around inside the server wrapped
/// under it, so neither a journal nor a message holds a raw key.
/// </summary>
public sealed class KeyEncryptionKey
{
    private const string Recipient = "kek";
    private readonly byte[] _key;

    private KeyEncryptionKey(byte[] key) => _key = key;

    public static KeyEncryptionKey Generate() => new(RandomNumberGenerator.GetBytes(SealedLayout.KeySize));

    public static KeyEncryptionKey FromBytes(ReadOnlySpan<byte> key) =>
        key.Length == SealedLayout.KeySize
            ? new KeyEncryptionKey(key.ToArray())
            : throw new CryptographicException($"a key-encryption key is {SealedLayout.KeySize} bytes");

    internal byte[] Export() => (byte[])_key.Clone();

    public Octets Wrap(GroupKey key) => key.WrapUnder(_key, Recipient);

    public GroupKey Unwrap(string groupId, long epoch, Octets wrapped) =>
        GroupKey.Unwrap(_key, wrapped, groupId, epoch, Recipient)
        ?? throw new CryptographicException($"group key {groupId}#{epoch} does not open under this KEK");

    /// <summary>The key, or null if it was not wrapped under this KEK (another key manager's, say).</summary>
    public GroupKey? TryUnwrap(string groupId, long epoch, Octets wrapped) => GroupKey.Unwrap(_key, wrapped, groupId, epoch, Recipient);

    /// <summary>Seals arbitrary secret state (e.g. LKH node keys) under the KEK, bound to a label.</summary>
    public Octets Seal(ReadOnlySpan<byte> secret, string label) =>
        Aead.Seal(_key, secret, System.Text.Encoding.UTF8.GetBytes("cpns/kek-seal/v1|" + label));

    public byte[]? Open(Octets sealedSecret, string label) =>
        Aead.Open(_key, sealedSecret, System.Text.Encoding.UTF8.GetBytes("cpns/kek-seal/v1|" + label));

    public override string ToString() => "KeyEncryptionKey(****)";
}
