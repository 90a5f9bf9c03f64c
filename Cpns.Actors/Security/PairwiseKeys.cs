using System.Security.Cryptography;
using System.Text;

namespace Cpns.Actors.Security;

/// <summary>
/// Pairwise session keys between this entity and its peers: X25519 agreement, then HKDF-SHA256 bound to
/// both ids. One instance per actor (not shared), caching one derived key per peer.
/// </summary>
public sealed class PairwiseKeys(EntityIdentity self)
{
    private static readonly byte[] Salt = "cpns/pairwise/v1"u8.ToArray();

    private readonly Dictionary<(string PeerId, Octets PeerKey), byte[]> _cache = new();

    public EntityIdentity Self { get; } = self;

    public byte[] KeyFor(string peerId, Octets peerAgreementKey)
    {
        if (_cache.TryGetValue((peerId, peerAgreementKey), out var key))
            return key;
        var shared = Self.Agree(peerAgreementKey);
        try
        {
            // Both sides derive the same key: the ids are ordered, not "mine first".
            var ids = string.CompareOrdinal(Self.DeviceId, peerId) <= 0
                ? $"{Self.DeviceId}|{peerId}"
                : $"{peerId}|{Self.DeviceId}";
            key = HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, Aead.KeySize, Salt, Encoding.UTF8.GetBytes(ids));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }

        _cache[(peerId, peerAgreementKey)] = key;
        return key;
    }

    public void Forget(string peerId)
    {
        foreach (var entry in _cache.Keys.Where(k => k.PeerId == peerId).ToList())
        {
            CryptographicOperations.ZeroMemory(_cache[entry]);
            _cache.Remove(entry);
        }
    }
}
