using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// What this entity seals for one peer alone, and opens from one. Each seal is ephemeral-static: a fresh X25519 key
/// agreed with the peer's static key, mixed with the pair's static-static key (as HPKE's auth mode does). Only the
/// peer opens it, only this entity could have made it, and once the ephemeral key is gone this entity's long-term key
/// no longer opens it, so a recorded wrap stays closed to whoever later takes the wrapper's node. One instance per
/// entity function, caching the static-static key per peer; safe to share with the children it hands its wrapping to
/// (the server CSKMF's group wrappers), so that a peer's key is agreed once, not once per child.
/// </summary>
public sealed class PairwiseKeys(EntityIdentity self)
{
    private const int EphemeralSize = 32; // an X25519 public key
    private static readonly byte[] StaticSalt = "cpns/pairwise/v1"u8.ToArray();
    private static readonly byte[] SealSalt = "cpns/pairwise-seal/v1"u8.ToArray();

    private readonly ConcurrentDictionary<(string PeerId, Octets PeerKey), byte[]> _cache = new();

    public EntityIdentity Self { get; } = self;

    /// <summary>What <see cref="SealFor"/> adds to the plaintext.</summary>
    public const int Overhead = EphemeralSize + SealedLayout.Overhead;

    /// <summary>Seals <paramref name="plaintext"/> for <paramref name="peerId"/> alone: ephemeral public key ‖ AEAD box.</summary>
    public Octets SealFor(string peerId, Octets peerAgreementKey, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        using var ephemeral = X25519Secret.Generate();
        return SealFor(peerId, peerAgreementKey, plaintext, associatedData, ephemeral);
    }

    /// <summary>
    /// Seals under an ephemeral key the caller keeps for several seals of one thing (an epoch's key to each of its
    /// recipients) and destroys with it: a seal then costs one agreement, not a key generation and an agreement.
    /// </summary>
    public Octets SealFor(string peerId, Octets peerAgreementKey, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData,
        X25519Secret ephemeral)
    {
        var ephemeralPublic = ephemeral.PublicKey.ToArray();
        var agreed = ephemeral.Agree(peerAgreementKey) ?? throw new InvalidOperationException($"{peerId} has a low-order agreement key");

        var key = SealKey(agreed, KeyFor(peerId, peerAgreementKey), ephemeralPublic, Self.DeviceId, peerId);
        try
        {
            var box = Aead.Seal(key, plaintext, associatedData);
            var output = new byte[EphemeralSize + box.Length];
            ephemeralPublic.CopyTo(output, 0);
            box.Span.CopyTo(output.AsSpan(EphemeralSize));
            return Octets.Own(output);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Opens what <paramref name="peerId"/> sealed for this entity; null if it was not, or was changed.</summary>
    public byte[]? OpenFrom(string peerId, Octets peerAgreementKey, Octets sealedBox, ReadOnlySpan<byte> associatedData)
    {
        if (sealedBox.Length < Overhead)
            return null;
        var ephemeralPublic = sealedBox.Span[..EphemeralSize].ToArray();
        byte[] agreed;
        try
        {
            agreed = Self.Agree(Octets.Own(ephemeralPublic));
        }
        catch (InvalidOperationException)
        {
            return null; // a low-order point: the agreement has no secret in it
        }

        var key = SealKey(agreed, KeyFor(peerId, peerAgreementKey), ephemeralPublic, peerId, Self.DeviceId);
        try
        {
            return Aead.Open(key, Octets.CopyFrom(sealedBox.Span[EphemeralSize..]), associatedData);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The static-static key with a peer (both sides derive the same one).</summary>
    internal byte[] KeyFor(string peerId, Octets peerAgreementKey)
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
            key = HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, SealedLayout.KeySize, StaticSalt, Encoding.UTF8.GetBytes(ids));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }

        if (_cache.TryAdd((peerId, peerAgreementKey), key))
            return key;
        CryptographicOperations.ZeroMemory(key); // another thread agreed it first
        return _cache[(peerId, peerAgreementKey)];
    }

    private static byte[] SealKey(byte[] ephemeralStatic, byte[] staticStatic, byte[] ephemeralPublic, string senderId, string recipientId)
    {
        var input = new byte[ephemeralStatic.Length + staticStatic.Length];
        ephemeralStatic.CopyTo(input, 0);
        staticStatic.CopyTo(input, ephemeralStatic.Length);
        var info = Encoding.UTF8.GetBytes($"{senderId}>{recipientId}|{Convert.ToBase64String(ephemeralPublic)}");
        try
        {
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, input, SealedLayout.KeySize, SealSalt, info);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
            CryptographicOperations.ZeroMemory(ephemeralStatic);
        }
    }

    public void Forget(string peerId)
    {
        foreach (var entry in _cache.Keys.Where(k => k.PeerId == peerId).ToList())
        {
            if (_cache.TryRemove(entry, out var key))
                CryptographicOperations.ZeroMemory(key);
        }
    }
}
