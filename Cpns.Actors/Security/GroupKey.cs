using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// A 256-bit service-group key, identified by (group id, epoch). The material stays inside the
/// holder actor; what travels is the material wrapped for one recipient, and its key check value.
/// </summary>
public sealed class GroupKey : IDisposable
{
    private readonly byte[] _material;

    // One ephemeral key for every wrap of this epoch's key made here, destroyed with the key: a recorded wrap stays closed
    // to whoever later takes the node, as with an ephemeral per wrap, once the key it carries is gone from the node too.
    private X25519Secret? _wrapEphemeral;

    private GroupKey(string groupId, long epoch, byte[] material)
    {
        GroupId = groupId;
        Epoch = epoch;
        _material = material;
        KeyCheck = KeyCheckValue(material);
    }

    public string GroupId { get; }

    public long Epoch { get; }

    /// <summary>First 8 bytes of HMAC-SHA256(key, "cpns/kcv"): identifies the key without revealing it.</summary>
    public Octets KeyCheck { get; }

    internal ReadOnlySpan<byte> Material => _material;

    public static GroupKey Generate(string groupId, long epoch) =>
        new(groupId, epoch, RandomNumberGenerator.GetBytes(SealedLayout.KeySize));

    internal static GroupKey FromMaterial(string groupId, long epoch, ReadOnlySpan<byte> material)
    {
        if (material.Length != SealedLayout.KeySize)
            throw new CryptographicException($"a group key is {SealedLayout.KeySize} bytes, got {material.Length}");
        return new GroupKey(groupId, epoch, material.ToArray());
    }

    public static Octets KeyCheckValue(ReadOnlySpan<byte> material) =>
        Octets.Own(HMACSHA256.HashData(material, "cpns/kcv"u8)[..8]);

    /// <summary>Wraps the key under a pairwise or key-encryption key, bound to group, epoch and recipient.</summary>
    public Octets WrapUnder(ReadOnlySpan<byte> wrappingKey, string recipientId) =>
        Aead.Seal(wrappingKey, _material, WrapContext(GroupId, Epoch, recipientId));

    /// <summary>Unwraps a key made by <see cref="WrapUnder"/>; null if it was not wrapped for this context.</summary>
    public static GroupKey? Unwrap(ReadOnlySpan<byte> wrappingKey, Octets wrapped, string groupId, long epoch,
        string recipientId) =>
        FromOpened(Aead.Open(wrappingKey, wrapped, WrapContext(groupId, epoch, recipientId)), groupId, epoch);

    /// <summary>Wraps the key for one recipient alone, ephemeral-static (see <see cref="PairwiseKeys"/>).</summary>
    public Octets WrapFor(PairwiseKeys wrapper, string recipientId, Octets recipientAgreementKey) =>
        wrapper.SealFor(recipientId, recipientAgreementKey, _material, WrapContext(GroupId, Epoch, recipientId),
            _wrapEphemeral ??= X25519Secret.Generate());

    /// <summary>The key wrapped for one recipient alone, as the delivery that carries it (push step 8, pull step 10).</summary>
    public GroupKeyDelivery DeliveryFor(PairwiseKeys wrapper, string recipientId, Octets recipientAgreementKey, DeliveryMode mode,
        IReadOnlyList<string> localMembers, EpochAnnouncement announcement, LkhPath? path = null) =>
        new(GroupId, Epoch, mode, wrapper.Self.DeviceId, recipientId, WrapFor(wrapper, recipientId, recipientAgreementKey), KeyCheck,
            localMembers, announcement, path);

    /// <summary>Unwraps a key made by <see cref="WrapFor"/> for this recipient; null if it was not, or was changed.</summary>
    public static GroupKey? UnwrapFrom(PairwiseKeys recipient, string wrapperId, Octets wrapperAgreementKey, Octets wrapped,
        string groupId, long epoch) =>
        FromOpened(recipient.OpenFrom(wrapperId, wrapperAgreementKey, wrapped, WrapContext(groupId, epoch, recipient.Self.DeviceId)),
            groupId, epoch);

    private static GroupKey? FromOpened(byte[]? material, string groupId, long epoch)
    {
        if (material is null)
            return null;
        if (material.Length == SealedLayout.KeySize)
            return new GroupKey(groupId, epoch, material);
        CryptographicOperations.ZeroMemory(material);
        return null;
    }

    private static byte[] WrapContext(string groupId, long epoch, string recipientId) =>
        Encoding.UTF8.GetBytes($"cpns/group-key/v1|{groupId}|{epoch}|{recipientId}");

    /// <summary>Zeroes the key material; the key is unusable afterwards.</summary>
    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_material);
        _wrapEphemeral?.Dispose();
    }

    public override string ToString() => $"GroupKey({GroupId}#{Epoch}, kcv {KeyCheck.ToHex()})";
}
