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
