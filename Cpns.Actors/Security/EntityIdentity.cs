using Cpns.Actors.Protocol;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math.EC.Rfc8032;
using Org.BouncyCastle.Security;
using KeyBlobFormat = NSec.Cryptography.KeyBlobFormat;
using SignatureAlgorithm = NSec.Cryptography.SignatureAlgorithm;

namespace Cpns.Actors.Security;

/// <summary>The public half of an entity's identity: what others need to verify it and to agree keys with it.</summary>
public sealed record PublicKeys(Octets Signing, Octets Agreement);

/// <summary>
/// An entity's long-term key pairs: Ed25519 for signatures, X25519 for key agreement.
/// Immutable once made; the private halves never leave this object except to derive keys.
/// </summary>
/// <remarks>
/// Signing stays on the managed implementation: NSec keeps each private key in a guarded mapping of its own, which a
/// process of 100,000 entities cannot hold, and importing one per operation costs more than it saves. Agreement is
/// libsodium's on plain bytes (<see cref="X25519Secret"/>), over twice as fast as the managed one; verification, which
/// holds no secret, is libsodium's too (see <see cref="VerificationKey"/>). <c>cpns bench channel</c> shows all of them.
/// </remarks>
public sealed class EntityIdentity
{
    private readonly Ed25519PrivateKeyParameters _signingKey;
    private readonly X25519Secret _agreementKey;

    private EntityIdentity(string deviceId, EntityKind kind, Ed25519PrivateKeyParameters signingKey, X25519Secret agreementKey)
    {
        DeviceId = deviceId;
        Kind = kind;
        _signingKey = signingKey;
        _agreementKey = agreementKey;
        PublicKeys = new PublicKeys(Octets.Own(signingKey.GeneratePublicKey().GetEncoded()), agreementKey.PublicKey);
    }

    public string DeviceId { get; }

    public EntityKind Kind { get; }

    public PublicKeys PublicKeys { get; }

    // One CSPRNG for the process: seeding a new one per key pair costs more than making the keys.
    private static readonly SecureRandom SharedRandom = new();

    public static EntityIdentity Generate(string deviceId, EntityKind kind, SecureRandom? random = null)
    {
        random ??= SharedRandom;
        return new EntityIdentity(deviceId, kind, new Ed25519PrivateKeyParameters(random),
            X25519Secret.FromBytes(new X25519PrivateKeyParameters(random).GetEncoded()));
    }

    /// <summary>Restores an identity from its two 32-byte private keys (a key file).</summary>
    public static EntityIdentity FromPrivateKeys(string deviceId, EntityKind kind, ReadOnlySpan<byte> signingPrivate,
        ReadOnlySpan<byte> agreementPrivate) =>
        new(deviceId, kind, new Ed25519PrivateKeyParameters(signingPrivate.ToArray()), X25519Secret.FromBytes(agreementPrivate));

    internal byte[] ExportSigningPrivateKey() => _signingKey.GetEncoded();

    internal byte[] ExportAgreementPrivateKey() => _agreementKey.Export();

    public Octets Sign(ReadOnlySpan<byte> message)
    {
        CryptoOperations.Signed();
        var signature = new byte[Ed25519PrivateKeyParameters.SignatureSize];
        var bytes = message.ToArray();
        _signingKey.Sign(Ed25519.Algorithm.Ed25519, null, bytes, 0, bytes.Length, signature, 0);
        return Octets.Own(signature);
    }

    public static bool Verify(Octets signingPublicKey, ReadOnlySpan<byte> message, Octets signature) =>
        VerificationKey.TryCreate(signingPublicKey) is { } key && key.Verify(message, signature);

    /// <summary>The raw X25519 shared secret with a peer; callers feed it to HKDF, never use it directly.</summary>
    /// <exception cref="InvalidOperationException">The peer key is a low-order point (the agreement holds no secret).</exception>
    internal byte[] Agree(Octets peerAgreementPublicKey) =>
        _agreementKey.Agree(peerAgreementPublicKey) ?? throw new InvalidOperationException("X25519 agreement with a low-order key");

    public override string ToString() => $"EntityIdentity({DeviceId}, {Kind})";
}

/// <summary>
/// An Ed25519 public key decoded once (decoding the curve point is a good part of a verification's cost), for
/// receivers that check many signatures by the same sender.
/// </summary>
public sealed class VerificationKey
{
    private readonly NSec.Cryptography.PublicKey _key;

    private VerificationKey(Octets encoded, NSec.Cryptography.PublicKey key)
    {
        Encoded = encoded;
        _key = key;
    }

    public Octets Encoded { get; }

    public static VerificationKey? TryCreate(Octets encoded) =>
        encoded.Length == 32 &&
        NSec.Cryptography.PublicKey.TryImport(SignatureAlgorithm.Ed25519, encoded.Span, KeyBlobFormat.RawPublicKey, out var key) && key is not null
            ? new VerificationKey(encoded, key)
            : null;

    public bool Verify(ReadOnlySpan<byte> message, Octets signature)
    {
        CryptoOperations.Verified();
        return signature.Length == 64 && SignatureAlgorithm.Ed25519.Verify(_key, message, signature.Span);
    }
}
