using Cpns.Actors.Protocol;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math.EC.Rfc8032;
using Org.BouncyCastle.Security;
using KeyBlobFormat = NSec.Cryptography.KeyBlobFormat;
using SignatureAlgorithm = NSec.Cryptography.SignatureAlgorithm;

namespace Cpns.Actors.Security;


/// <summary>
/// An entity's long-term key pairs: Ed25519 for signatures, X25519 for key agreement.
/// Immutable once made; the private halves never leave this object except to derive keys.
/// </summary>
/// <remarks>
/// Signing and agreement are libsodium's on plain bytes (<see cref="Sodium"/>, <see cref="X25519Secret"/>), about twice as
/// fast as the managed implementation: not through NSec's key objects, which keep each private key in a guarded mapping
/// of its own that a process of 100,000 entities cannot hold. Verification, which holds no secret, is libsodium's too
/// (see <see cref="VerificationKey"/>). <c>cpns bench channel</c> shows all of them.
/// </remarks>
public sealed class EntityIdentity
{
    /// <summary>libsodium's form of the Ed25519 private key: the 32-byte seed, then the public key.</summary>
    private readonly byte[] _signingSecret;
    private readonly X25519Secret _agreementKey;

    private EntityIdentity(string deviceId, EntityKind kind, ReadOnlySpan<byte> signingSeed, X25519Secret agreementKey)
    {
        DeviceId = deviceId;
        Kind = kind;
        _signingSecret = Sodium.SigningSecretOf(signingSeed, out var signingPublic);
        _agreementKey = agreementKey;
        PublicKeys = new PublicKeys(Octets.Own(signingPublic), agreementKey.PublicKey);
    }

    public string DeviceId { get; }

    public EntityKind Kind { get; }

    public PublicKeys PublicKeys { get; }

    // One CSPRNG for the process: seeding a new one per key pair costs more than making the keys.
    private static readonly SecureRandom SharedRandom = new();

    public static EntityIdentity Generate(string deviceId, EntityKind kind, SecureRandom? random = null)
    {
        random ??= SharedRandom;
        var seed = new byte[32];
        random.NextBytes(seed);
        try
        {
            return new EntityIdentity(deviceId, kind, seed, X25519Secret.FromBytes(new X25519PrivateKeyParameters(random).GetEncoded()));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Restores an identity from its two 32-byte private keys (a key file).</summary>
    public static EntityIdentity FromPrivateKeys(string deviceId, EntityKind kind, ReadOnlySpan<byte> signingPrivate,
        ReadOnlySpan<byte> agreementPrivate) =>
        new(deviceId, kind, signingPrivate, X25519Secret.FromBytes(agreementPrivate));

    internal byte[] ExportSigningPrivateKey() => _signingSecret[..32];

    internal byte[] ExportAgreementPrivateKey() => _agreementKey.Export();

    public Octets Sign(ReadOnlySpan<byte> message)
    {
        CryptoOperations.Signed();
        return Octets.Own(Sodium.Sign(_signingSecret, message));
    }

    public static bool Verify(Octets signingPublicKey, ReadOnlySpan<byte> message, Octets signature) =>
        VerificationKey.TryCreate(signingPublicKey) is { } key && key.Verify(message, signature);

    /// <inheritdoc cref="VerificationKey.VerifyStatement"/>
    public static bool VerifyStatement(Octets signingPublicKey, ReadOnlySpan<byte> message, Octets signature) =>
        VerificationKey.TryCreate(signingPublicKey) is { } key && key.VerifyStatement(message, signature);

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

    // One decoded key per public key in the process, shared by every function that trusts it (a public key is no
    // secret, and each function keeping its own copy cost a PNE more than a kilobyte). Emptied when it grows past the
    // bound, so keys of entities long gone do not pile up.
    private const int MaxDecoded = 1 << 20;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Octets, VerificationKey> Decoded = new();
    private static int _decodedCount;

    public static VerificationKey? TryCreate(Octets encoded)
    {
        if (Decoded.TryGetValue(encoded, out var known))
            return known;
        if (encoded.Length != 32 ||
            !NSec.Cryptography.PublicKey.TryImport(SignatureAlgorithm.Ed25519, encoded.Span, KeyBlobFormat.RawPublicKey, out var imported) ||
            imported is null)
            return null;
        var key = new VerificationKey(encoded, imported);
        if (Interlocked.Increment(ref _decodedCount) > MaxDecoded)
        {
            Decoded.Clear();
            Interlocked.Exchange(ref _decodedCount, 0);
        }

        return Decoded.GetOrAdd(encoded, key);
    }

    public bool Verify(ReadOnlySpan<byte> message, Octets signature)
    {
        CryptoOperations.Verified();
        return signature.Length == 64 && SignatureAlgorithm.Ed25519.Verify(_key, message, signature.Span);
    }

    // Statements found good, by digest of key, signature and message; emptied when it grows past the bound.
    private const int MaxStatements = 1 << 16;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(UInt128, UInt128), bool> GoodStatements = new();
    private static int _statementCount;

    /// <summary>
    /// Checks a statement that many entities of the process check in the same bytes — an epoch announcement every holder of
    /// the group checks, a revocation notice every PNE checks — once per process: a good signature is remembered (by a
    /// SHA-256 digest of key, signature and statement), a bad one is checked again every time. Not for envelopes, whose
    /// bytes only their one receiver sees.
    /// </summary>
    public bool VerifyStatement(ReadOnlySpan<byte> message, Octets signature)
    {
        if (signature.Length != 64)
            return false;
        var digest = StatementDigest(message, signature);
        if (GoodStatements.ContainsKey(digest))
            return true;
        if (!Verify(message, signature))
            return false;
        if (Interlocked.Increment(ref _statementCount) > MaxStatements)
        {
            GoodStatements.Clear();
            Interlocked.Exchange(ref _statementCount, 0);
        }

        GoodStatements[digest] = true;
        return true;
    }

    private (UInt128, UInt128) StatementDigest(ReadOnlySpan<byte> message, Octets signature)
    {
        // One contiguous input, hashed at once: no hash object per check on the path every holder of an epoch takes.
        var length = Encoded.Length + signature.Length + message.Length;
        var rented = length > 512 ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
        var input = rented is null ? stackalloc byte[length] : rented.AsSpan(0, length);
        Encoded.Span.CopyTo(input);
        signature.Span.CopyTo(input[Encoded.Length..]);
        message.CopyTo(input[(Encoded.Length + signature.Length)..]);
        Span<byte> digest = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(input, digest);
        if (rented is not null)
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest[16..]));
    }
}
