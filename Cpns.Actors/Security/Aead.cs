using System.Security.Cryptography;
using Cpns.Actors.Protocol;
using static Cpns.Actors.Protocol.SealedLayout;

namespace Cpns.Actors.Security;

/// <summary>
/// AES-256-GCM with a random 96-bit nonce, laid out as nonce ‖ ciphertext ‖ tag.
/// .NET's AesGcm uses the CPU's AES instructions; this is the one place bulk encryption happens.
/// </summary>
public static class Aead
{

    public static Octets Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        CryptoOperations.Sealed();
        var output = new byte[Overhead + plaintext.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var gcm = new AesGcm(key, TagSize);
        gcm.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length),
            output.AsSpan(NonceSize + plaintext.Length, TagSize), associatedData);
        return Octets.Own(output);
    }

    /// <summary>Returns the plaintext, or null when the ciphertext, its tag or the associated data do not match.</summary>
    public static byte[]? Open(ReadOnlySpan<byte> key, Octets sealedBox, ReadOnlySpan<byte> associatedData)
    {
        CryptoOperations.Sealed();
        if (sealedBox.Length < Overhead)
            return null;
        var box = sealedBox.Span;
        var plaintext = new byte[box.Length - Overhead];
        try
        {
            using var gcm = new AesGcm(key, TagSize);
            gcm.Decrypt(box[..NonceSize], box.Slice(NonceSize, plaintext.Length), box[^TagSize..], plaintext,
                associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return null;
        }
    }
}
