using System.Runtime.InteropServices;

namespace Cpns.Actors.Security;

/// <summary>
/// X25519 and Ed25519 signing from libsodium (the native library NSec ships), called on plain byte arrays: no guarded
/// memory per key, so a process of 100,000 entities can use it for every agreement and signature. <c>cpns bench
/// channel</c> measures it against BouncyCastle and against NSec's key objects, side by side, and checks the bytes agree.
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

    /// <summary>libsodium's 64-byte Ed25519 secret key (the seed, then the public key) for a 32-byte seed.</summary>
    public static byte[] SigningSecretOf(ReadOnlySpan<byte> seed, out byte[] publicKey)
    {
        publicKey = new byte[32];
        var secret = new byte[64];
        if (seed.Length != 32)
            throw new ArgumentException($"an Ed25519 private key is 32 bytes, not {seed.Length}", nameof(seed));
        if (crypto_sign_seed_keypair(publicKey, secret, seed.ToArray()) != 0)
            throw new InvalidOperationException("Ed25519 key derivation failed");
        return secret;
    }

    /// <summary>The Ed25519 signature (64 bytes) of <paramref name="message"/> under a secret from <see cref="SigningSecretOf"/>.</summary>
    public static byte[] Sign(byte[] secret, ReadOnlySpan<byte> message)
    {
        var signature = new byte[64];
        if (crypto_sign_detached(signature, out _, message.ToArray(), (ulong)message.Length, secret) != 0)
            throw new InvalidOperationException("Ed25519 signing failed");
        return signature;
    }

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_sign_seed_keypair(byte[] pk, byte[] sk, byte[] seed);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_sign_detached(byte[] sig, out ulong siglen, byte[] m, ulong mlen, byte[] sk);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int sodium_init();

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519(byte[] q, byte[] n, byte[] p);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519_base(byte[] q, byte[] n);
}
