using Cpns.Actors.Protocol;
namespace Cpns.Actors.Security;

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
