namespace Cpns.Actors.Protocol;

/// <summary>
/// The layout of every AES-256-GCM box on the wire: a 96-bit nonce, the ciphertext, a 128-bit tag; keys of 256 bits.
/// Wire records size their packed fields by it; <c>Security.Aead</c> seals and opens by it.
/// </summary>
public static class SealedLayout
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int Overhead = NonceSize + TagSize;
}
