using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.X509;
using Org.BouncyCastle.X509.Extension;

namespace Cpns.Actors.Benchmarks;

/// <summary>
/// A credential as <see cref="CredentialAuthority"/> makes it, signed by BouncyCastle's own Ed25519 signer instead of
/// libsodium: the baseline the authority's signer is measured against, and the proof that the two are interchangeable.
/// </summary>
public static class BouncyCastleCredential
{
    public static X509Certificate Issue(Ed25519PrivateKeyParameters root, string issuer, string subject, EntityKind kind,
        PublicKeys keys, DateTimeOffset notBefore, TimeSpan validity) =>
        CredentialAuthority.Unsigned(issuer, Org.BouncyCastle.Math.BigInteger.One, subject, kind, keys, notBefore, validity,
                X509ExtensionUtilities.CreateAuthorityKeyIdentifier(root.GeneratePublicKey()))
            .Generate(new Asn1SignatureFactory("Ed25519", root));
}
