using System.Runtime.InteropServices;

namespace Cpns.Actors.Security;

/// <summary>
/// X25519 from libsodium (the native library NSec ships), called on plain byte arrays: no guarded memory per key, so a
/// process of 100,000 entities can use it for every agreement. <c>cpns bench channel</c> measures it against
/// BouncyCastle and against NSec's key objects, side by side.
/// </summary>
internal static class Sodium
{
    public const int KeySize = 32;

    private const string Library = "libsodium";

    static Sodium()
    {
        if (sodium_init() < 0)
            throw new InvalidOperationException("libsodium did not initialise");
    }

    /// <summary>X25519(secret, peer) into a new 32-byte array; false for a low-order peer key (an all-zero result).</summary>
    public static bool TryAgree(byte[] secret, byte[] peerPublic, out byte[] shared)
    {
        shared = new byte[32];
        return crypto_scalarmult_curve25519(shared, secret, peerPublic) == 0;
    }

    /// <summary>The public key of an X25519 secret.</summary>
    public static byte[] PublicKeyOf(byte[] secret)
    {
        var publicKey = new byte[32];
        if (crypto_scalarmult_curve25519_base(publicKey, secret) != 0)
            throw new InvalidOperationException("X25519 public key derivation failed");
        return publicKey;
    }

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int sodium_init();

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519(byte[] q, byte[] n, byte[] p);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519_base(byte[] q, byte[] n);
}

/// <summary>An X25519 private key as plain bytes (the entity's own, or one ephemeral), agreed through libsodium.</summary>
public sealed class X25519Secret : IDisposable
{
    private readonly byte[] _secret;

    private X25519Secret(byte[] secret)
    {
        _secret = secret;
        PublicKey = Octets.Own(Sodium.PublicKeyOf(secret));
    }

    public Octets PublicKey { get; }

    public static X25519Secret Generate() => new(System.Security.Cryptography.RandomNumberGenerator.GetBytes(Sodium.KeySize));

    public static X25519Secret FromBytes(ReadOnlySpan<byte> secret) =>
        secret.Length == Sodium.KeySize
            ? new X25519Secret(secret.ToArray())
            : throw new System.Security.Cryptography.CryptographicException($"an X25519 private key is {Sodium.KeySize} bytes");

    /// <summary>The raw shared secret with a peer's public key (callers feed it to HKDF); null for a low-order key.</summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The peer key is not 32 bytes.</exception>
    public byte[]? Agree(Octets peerPublicKey)
    {
        if (peerPublicKey.Length != Sodium.KeySize)
            throw new System.Security.Cryptography.CryptographicException("X25519 public key must be 32 bytes");
        CryptoOperations.Agreed();
        return Sodium.TryAgree(_secret, peerPublicKey.ToArray(), out var shared) ? shared : null;
    }

    internal byte[] Export() => (byte[])_secret.Clone();

    public void Dispose() => System.Security.Cryptography.CryptographicOperations.ZeroMemory(_secret);
}
