using Cpns.Actors.Protocol;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.EdEC;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using Org.BouncyCastle.X509.Extension;

namespace Cpns.Actors.Security;


/// <summary>What a credential that checked out says.</summary>
public sealed record VerifiedCredential(
    string DeviceId,
    EntityKind Kind,
    PublicKeys Keys,
    string Serial,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    SecurityLevel? PnSecurityCeiling = null);

public readonly record struct CredentialCheck(VerifiedCredential? Credential, CredentialError? Error, string? Detail)
{
    public bool Valid => Credential is not null;

    public static CredentialCheck Fail(CredentialError error, string detail) => new(null, error, detail);
}

/// <summary>
/// The object identifiers of the CPNS extensions in a credential: under the project's own UUID arc (ITU-T X.667,
/// 2.25.&lt;uuid&gt;, UUID 721b4964-878c-470a-bd71-c617d5a6931d), which needs nobody's registration.
/// </summary>
public static class CredentialOids
{
    public const string Arc = "2.25.151673672115328229282145302372004827933";
    public static readonly DerObjectIdentifier EntityKind = new(Arc + ".7.1");
    public static readonly DerObjectIdentifier AgreementKey = new(Arc + ".7.2");

    /// <summary>A PN GW's: the highest PN security level it may claim, as the operator provisioned it.</summary>
    public static readonly DerObjectIdentifier PnSecurityCeiling = new(Arc + ".7.3");

    /// <summary>The borrowed arc of credentials issued before this one: still read, so journaled credentials verify; never written.</summary>
    internal static readonly DerObjectIdentifier LegacyEntityKind = new("1.3.6.1.4.1.59999.7.1");
    internal static readonly DerObjectIdentifier LegacyAgreementKey = new("1.3.6.1.4.1.59999.7.2");
}

/// <summary>
/// The KMC's certificate authority: a root Ed25519 key that signs every entity's credential (Device ID/Key
/// assignment, seed §5.3.1.9.4).
/// </summary>
public sealed class CredentialAuthority
{
    private readonly Ed25519PrivateKeyParameters _rootKey;
    private readonly CertificateSigner _signer;
    private readonly AuthorityKeyIdentifier _authorityKeyId;
    private readonly SecureRandom _random = new();

    private CredentialAuthority(string name, Ed25519PrivateKeyParameters rootKey)
    {
        Name = name;
        _rootKey = rootKey;
        var rootPublic = rootKey.GeneratePublicKey();
        RootPublicKey = Octets.Own(rootPublic.GetEncoded());
        _signer = new CertificateSigner(Sodium.SigningSecretOf(rootKey.GetEncoded(), out _));
        _authorityKeyId = X509ExtensionUtilities.CreateAuthorityKeyIdentifier(rootPublic);
    }

    public string Name { get; }

    public Octets RootPublicKey { get; }

    public static CredentialAuthority Generate(string name) => new(name, new Ed25519PrivateKeyParameters(new SecureRandom()));

    public static CredentialAuthority FromPrivateKey(string name, ReadOnlySpan<byte> rootPrivateKey) =>
        new(name, new Ed25519PrivateKeyParameters(rootPrivateKey.ToArray()));

    internal byte[] ExportPrivateKey() => _rootKey.GetEncoded();

    public CredentialVerifier Verifier() => CredentialVerifier.For(RootPublicKey);

    public Credential Issue(string deviceId, EntityKind kind, PublicKeys keys, DateTimeOffset notBefore, TimeSpan validity) =>
        IssueWithSerial(deviceId, kind, keys, notBefore, validity).Credential;

    /// <summary>Issues a credential and tells its serial number (hex), the handle revocation uses.</summary>
    public (Credential Credential, string Serial) IssueWithSerial(string deviceId, EntityKind kind, PublicKeys keys,
        DateTimeOffset notBefore, TimeSpan validity, SecurityLevel? pnSecurityCeiling = null)
    {
        if (!DeviceIds.IsValid(deviceId))
            throw new ArgumentException($"'{deviceId}' is not a valid device id", nameof(deviceId));
        var serial = new byte[16];
        _random.NextBytes(serial);
        var generator = Unsigned(Name, new BigInteger(1, serial), deviceId, kind, keys, notBefore, validity, _authorityKeyId,
            pnSecurityCeiling);
        var certificate = generator.Generate(_signer);
        return (new Credential(Octets.Own(certificate.GetEncoded())), certificate.SerialNumber.ToString(16));
    }

    /// <summary>The certificate a credential is, before it is signed.</summary>
    public static X509V3CertificateGenerator Unsigned(string issuer, BigInteger serial, string deviceId, EntityKind kind,
        PublicKeys keys, DateTimeOffset notBefore, TimeSpan validity, AuthorityKeyIdentifier authorityKeyId,
        SecurityLevel? pnSecurityCeiling = null)
    {
        var generator = new X509V3CertificateGenerator();
        generator.SetSerialNumber(serial);
        generator.SetIssuerDN(new X509Name($"CN={issuer}"));
        generator.SetSubjectDN(new X509Name($"CN={deviceId}"));
        generator.SetNotBefore(notBefore.UtcDateTime);
        generator.SetNotAfter((notBefore + validity).UtcDateTime);
        generator.SetPublicKey(new Ed25519PublicKeyParameters(keys.Signing.Span));
        generator.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(false));
        generator.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.DigitalSignature));
        generator.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, authorityKeyId);
        generator.AddExtension(CredentialOids.EntityKind, false, new DerUtf8String(kind.ToString()));
        generator.AddExtension(CredentialOids.AgreementKey, false, new DerOctetString(keys.Agreement.ToArray()));
        if (pnSecurityCeiling is { } ceiling)
            generator.AddExtension(CredentialOids.PnSecurityCeiling, false, new DerUtf8String(ceiling.ToString()));
        return generator;
    }

    /// <summary>
    /// Signs a certificate's to-be-signed part with libsodium's Ed25519, as every envelope is signed (BouncyCastle's own
    /// signer is several times slower; <c>cpns bench channel</c> measures both): BouncyCastle still builds the certificate.
    /// </summary>
    private sealed class CertificateSigner(byte[] signingSecret) : ISignatureFactory
    {
        private static readonly AlgorithmIdentifier Ed25519 = new(EdECObjectIdentifiers.id_Ed25519);

        public object AlgorithmDetails => Ed25519;

        public IStreamCalculator<IBlockResult> CreateCalculator() => new Calculator(signingSecret);

        private sealed class Calculator(byte[] secret) : IStreamCalculator<IBlockResult>
        {
            private readonly MemoryStream _signed = new();

            public Stream Stream => _signed;

            public IBlockResult GetResult()
            {
                CryptoOperations.Signed();
                return new SimpleBlockResult(Sodium.Sign(secret, _signed.ToArray())); // the generator has closed the stream by now
            }
        }
    }
}

/// <summary>
/// Checks credentials against the KMC root: signature, validity, revocation, kind and subject. One per root key in the
/// process (<see cref="For"/>), shared by every entity that trusts that root.
/// </summary>
public sealed class CredentialVerifier
{
    private static readonly ConcurrentDictionary<Octets, CredentialVerifier> ByRoot = new();

    private readonly VerificationKey? _root;
    private readonly byte[] _rootKeyId;

    // What the root signed does not change: a credential's signature is checked and its fields read once, however many
    // entities of the process are shown it (every PNE of a PN GW its PN GW's, the PN GW and the server each PNE's).
    // Validity, revocation, subject and kind are checked at every call. Emptied when it outgrows its bound.
    private const int MaxRemembered = 1 << 15;
    private readonly ConcurrentDictionary<Octets, VerifiedCredential> _signedByRoot = new();

    private CredentialVerifier(Octets rootPublicKey)
    {
        RootPublicKey = rootPublicKey;
        _root = VerificationKey.TryCreate(rootPublicKey);
        _rootKeyId = X509ExtensionUtilities.CreateAuthorityKeyIdentifier(new Ed25519PublicKeyParameters(rootPublicKey.Span)).KeyIdentifier
            .GetOctets();
    }

    public static CredentialVerifier For(Octets rootPublicKey) => ByRoot.GetOrAdd(rootPublicKey, key => new CredentialVerifier(key));

    public Octets RootPublicKey { get; }

    public CredentialCheck Verify(Credential? credential, DateTimeOffset now, IReadOnlySet<string>? revokedSerials = null,
        string? expectedDeviceId = null, params EntityKind[] allowedKinds)
    {
        if (credential is null || credential.Der.Length == 0)
            return CredentialCheck.Fail(CredentialError.Malformed, "no credential");
        var digest = Octets.Own(SHA256.HashData(credential.Der.Span));
        if (!_signedByRoot.TryGetValue(digest, out var signed))
        {
            var read = Read(credential);
            if (read.Credential is null)
                return read;
            signed = read.Credential;
            if (_signedByRoot.Count >= MaxRemembered)
                _signedByRoot.Clear();
            _signedByRoot[digest] = signed;
        }

        return Check(signed, now, revokedSerials, expectedDeviceId, allowedKinds);
    }

    private static CredentialCheck Check(VerifiedCredential credential, DateTimeOffset now, IReadOnlySet<string>? revokedSerials,
        string? expectedDeviceId, EntityKind[] allowedKinds)
    {
        var (deviceId, kind, serial) = (credential.DeviceId, credential.Kind, credential.Serial);
        if (revokedSerials is not null && revokedSerials.Contains(serial))
            return CredentialCheck.Fail(CredentialError.Revoked, $"credential {serial} of {deviceId} is revoked");
        if (now < credential.NotBefore)
            return CredentialCheck.Fail(CredentialError.NotYetValid, $"credential of {deviceId} is valid from {credential.NotBefore:u}");
        if (now > credential.NotAfter)
            return CredentialCheck.Fail(CredentialError.Expired, $"credential of {deviceId} expired at {credential.NotAfter:u}");
        if (expectedDeviceId is not null && deviceId != expectedDeviceId)
            return CredentialCheck.Fail(CredentialError.WrongSubject, $"credential is for {deviceId}, not {expectedDeviceId}");
        if (allowedKinds.Length > 0 && !allowedKinds.Contains(kind))
            return CredentialCheck.Fail(CredentialError.WrongKind, $"{deviceId} is a {kind}, not {string.Join(" or ", allowedKinds)}");
        return new CredentialCheck(credential, null, null);
    }

    /// <summary>The root's signature over the to-be-signed part, checked with libsodium as any envelope's.</summary>
    private bool SignedByRoot(X509Certificate certificate)
    {
        var structure = certificate.CertificateStructure;
        var algorithm = structure.SignatureAlgorithm;
        return _root is not null && EdECObjectIdentifiers.id_Ed25519.Equals(algorithm.Algorithm) && algorithm.Parameters is null &&
               algorithm.Equals(structure.TbsCertificate.Signature) &&
               _root.Verify(certificate.GetTbsCertificate(), Octets.Own(certificate.GetSignature()));
    }

    /// <summary>The credential's signature and fields: what does not depend on the time or on revocation.</summary>
    private CredentialCheck Read(Credential credential)
    {
        X509Certificate certificate;
        try
        {
            certificate = new X509CertificateParser().ReadCertificate(credential.Der.ToArray())
                          ?? throw new InvalidDataException("empty certificate");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return CredentialCheck.Fail(CredentialError.Malformed, "credential is not an X.509 certificate");
        }

        try
        {
            var authorityKeyId = X509ExtensionUtilities.GetAuthorityKeyIdentifier(certificate)?.KeyIdentifier.GetOctets();
            if (authorityKeyId is null || !authorityKeyId.AsSpan().SequenceEqual(_rootKeyId))
                return CredentialCheck.Fail(CredentialError.UnknownIssuer, "credential was not issued by this KMC root");
            if (!SignedByRoot(certificate))
                return CredentialCheck.Fail(CredentialError.BadSignature, "credential signature does not verify against the KMC root");

            var deviceId = certificate.SubjectDN.GetValueList(X509Name.CN).FirstOrDefault() ?? "";
            var kindText = ((X509ExtensionUtilities.FromExtensionValue(certificate, CredentialOids.EntityKind) ??
                             X509ExtensionUtilities.FromExtensionValue(certificate, CredentialOids.LegacyEntityKind)) as DerUtf8String)
                ?.GetString();
            var agreement = ((X509ExtensionUtilities.FromExtensionValue(certificate, CredentialOids.AgreementKey) ??
                              X509ExtensionUtilities.FromExtensionValue(certificate, CredentialOids.LegacyAgreementKey)) as Asn1OctetString)
                ?.GetOctets();
            if (!Enum.TryParse<EntityKind>(kindText, out var kind) || agreement is not { Length: 32 } ||
                certificate.GetPublicKey() is not Ed25519PublicKeyParameters signing)
                return CredentialCheck.Fail(CredentialError.Malformed, "credential lacks the CPNS kind or key extensions");
            SecurityLevel? ceiling = null;
            if (X509ExtensionUtilities.FromExtensionValue(certificate, CredentialOids.PnSecurityCeiling) is { } ceilingValue)
            {
                if (ceilingValue is not DerUtf8String text || !Enum.TryParse<SecurityLevel>(text.GetString(), out var level) ||
                    !Enum.IsDefined(level))
                    return CredentialCheck.Fail(CredentialError.Malformed, "credential's PN security ceiling is not a level");
                ceiling = level;
            }

            var serial = certificate.SerialNumber.ToString(16);
            var notBefore = new DateTimeOffset(DateTime.SpecifyKind(certificate.NotBefore, DateTimeKind.Utc));
            var notAfter = new DateTimeOffset(DateTime.SpecifyKind(certificate.NotAfter, DateTimeKind.Utc));
            return new CredentialCheck(new VerifiedCredential(deviceId, kind,
                new PublicKeys(Octets.Own(signing.GetEncoded()), Octets.Own(agreement)), serial, notBefore, notAfter, ceiling), null, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return CredentialCheck.Fail(CredentialError.Malformed, "credential could not be read: " + e.GetType().Name);
        }
    }
}

