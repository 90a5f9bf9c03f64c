using Cpns.Actors.Benchmarks;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

public sealed class CredentialTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private readonly CredentialAuthority _kmc = CredentialAuthority.Generate("cpns-kmc");
    private readonly EntityIdentity _device = EntityIdentity.Generate("p1", EntityKind.Pne);

    private Credential Issue(DateTimeOffset? notBefore = null, TimeSpan? validity = null, EntityKind kind = EntityKind.Pne) =>
        _kmc.Issue(_device.DeviceId, kind, _device.PublicKeys, notBefore ?? Now.AddHours(-1), validity ?? TimeSpan.FromDays(30));

    [Fact]
    public void A_credential_binds_id_kind_and_both_public_keys_and_verifies_against_the_root()
    {
        var check = _kmc.Verifier().Verify(Issue(), Now, null, "p1", EntityKind.Pne);
        Assert.True(check.Valid, check.Detail);
        Assert.Equal("p1", check.Credential!.DeviceId);
        Assert.Equal(EntityKind.Pne, check.Credential.Kind);
        Assert.Equal(_device.PublicKeys, check.Credential.Keys);
        Assert.Equal(Now.AddHours(-1).AddDays(30), check.Credential.NotAfter);
    }

    [Fact]
    public void A_credential_is_a_real_X509_v3_certificate_signed_with_Ed25519()
    {
        var certificate = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(Issue().Der.ToArray());
        Assert.Equal(3, certificate.Version);
        Assert.Equal("CN=p1", certificate.SubjectDN.ToString());
        Assert.Equal("CN=cpns-kmc", certificate.IssuerDN.ToString());
        Assert.Equal("1.3.101.112", certificate.SigAlgOid); // Ed25519
        Assert.Equal(-1, certificate.GetBasicConstraints()); // not a CA
    }

    [Fact]
    public void The_CPNS_extensions_are_on_the_projects_own_arc_and_the_key_only_signs_and_OpenSSL_reads_it()
    {
        var der = Issue().Der.ToArray();
        var certificate = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(der);
        var extensions = certificate.GetNonCriticalExtensionOids().Order().ToList();
        Assert.Contains(CredentialOids.Arc + ".7.1", extensions);
        Assert.Contains(CredentialOids.Arc + ".7.2", extensions);
        Assert.DoesNotContain(extensions, oid => oid.StartsWith("1.3.6.1.4.1.59999", StringComparison.Ordinal));
        var usage = certificate.GetKeyUsage();
        Assert.True(usage[0], "digitalSignature");
        Assert.Equal([0], usage.Select((set, bit) => (set, bit)).Where(u => u.set).Select(u => u.bit));

        var path = Path.Combine(Path.GetTempPath(), $"cpns-credential-{Guid.NewGuid():N}.der");
        File.WriteAllBytes(path, der);
        try
        {
            using var openssl = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("openssl",
                ["x509", "-inform", "DER", "-in", path, "-noout", "-text"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var text = openssl.StandardOutput.ReadToEnd();
            openssl.WaitForExit();
            Assert.True(openssl.ExitCode == 0, openssl.StandardError.ReadToEnd());
            Assert.Contains("Subject: CN = p1", text);
            Assert.Contains("ED25519", text);
            Assert.Contains("Digital Signature", text);
            Assert.DoesNotContain("Key Agreement", text);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_PN_GWs_credential_carries_the_PN_security_ceiling_it_was_provisioned_with()
    {
        var gateway = EntityIdentity.Generate("g1", EntityKind.PnGateway);
        var capped = _kmc.IssueWithSerial("g1", EntityKind.PnGateway, gateway.PublicKeys, Now.AddHours(-1), TimeSpan.FromDays(1),
            SecurityLevel.Medium).Credential;
        Assert.Equal(SecurityLevel.Medium, _kmc.Verifier().Verify(capped, Now).Credential?.PnSecurityCeiling);
        Assert.Null(_kmc.Verifier().Verify(Issue(), Now).Credential?.PnSecurityCeiling); // none provisioned: none stated

        var certificate = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(capped.Der.ToArray());
        Assert.Contains(CredentialOids.Arc + ".7.3", certificate.GetNonCriticalExtensionOids());
    }

    [Fact]
    public void A_forged_credential_is_refused()
    {
        var der = Issue().Der.ToArray();
        der[^5] ^= 0x40; // inside the signature
        var check = _kmc.Verifier().Verify(new Credential(Octets.Own(der)), Now);
        Assert.Equal(CredentialError.BadSignature, check.Error);
    }

    [Fact]
    public void A_tampered_subject_is_refused()
    {
        var der = Issue().Der.ToArray();
        var index = der.AsSpan().IndexOf("p1"u8);
        der[index + 1] = (byte)'9';
        Assert.Equal(CredentialError.BadSignature, _kmc.Verifier().Verify(new Credential(Octets.Own(der)), Now).Error);
    }

    [Fact]
    public void A_credential_from_another_root_is_refused_as_an_unknown_issuer()
    {
        var other = CredentialAuthority.Generate("cpns-kmc");
        var credential = other.Issue("p1", EntityKind.Pne, _device.PublicKeys, Now.AddHours(-1), TimeSpan.FromDays(1));
        Assert.Equal(CredentialError.UnknownIssuer, _kmc.Verifier().Verify(credential, Now).Error);
    }

    [Fact]
    public void Validity_is_checked_both_ways()
    {
        Assert.Equal(CredentialError.Expired,
            _kmc.Verifier().Verify(Issue(Now.AddDays(-10), TimeSpan.FromDays(1)), Now).Error);
        Assert.Equal(CredentialError.NotYetValid,
            _kmc.Verifier().Verify(Issue(Now.AddDays(1), TimeSpan.FromDays(1)), Now).Error);
    }

    [Fact]
    public void Revocation_kind_and_subject_are_checked()
    {
        var credential = Issue();
        var serial = _kmc.Verifier().Verify(credential, Now).Credential!.Serial;
        Assert.Equal(CredentialError.Revoked,
            _kmc.Verifier().Verify(credential, Now, new HashSet<string> { serial }).Error);
        Assert.Equal(CredentialError.WrongKind,
            _kmc.Verifier().Verify(credential, Now, null, "p1", EntityKind.PnGateway, EntityKind.Both).Error);
        Assert.Equal(CredentialError.WrongSubject, _kmc.Verifier().Verify(credential, Now, null, "p2").Error);
    }

    [Fact]
    public void The_root_signature_is_plain_Ed25519_over_the_certificate_both_ways()
    {
        // Signed here through libsodium: BouncyCastle's own verifier accepts it.
        var certificate = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(Issue().Der.ToArray());
        Assert.True(certificate.IsSignatureValid(new Org.BouncyCastle.Crypto.Parameters.Ed25519PublicKeyParameters(_kmc.RootPublicKey.Span)));

        // Signed by BouncyCastle's own signer: checked here through libsodium, and a changed byte in it is refused.
        var root = new Org.BouncyCastle.Crypto.Parameters.Ed25519PrivateKeyParameters(new Org.BouncyCastle.Security.SecureRandom());
        var rootPublic = root.GeneratePublicKey();
        var der = BouncyCastleCredential.Issue(root, "other-kmc", "p1", EntityKind.Pne, _device.PublicKeys,
            Now.AddHours(-1), TimeSpan.FromDays(1)).GetEncoded();
        var verifier = CredentialVerifier.For(Octets.Own(rootPublic.GetEncoded()));
        var check = verifier.Verify(new Credential(Octets.Own(der)), Now, null, "p1", EntityKind.Pne);
        Assert.True(check.Valid, check.Detail);
        der[^10] ^= 1; // inside the signature
        Assert.Equal(CredentialError.BadSignature, verifier.Verify(new Credential(Octets.Own(der)), Now).Error);
    }

    [Fact]
    public void A_credential_is_verified_once_but_its_validity_revocation_kind_and_subject_at_every_check()
    {
        var credential = Issue(Now.AddHours(-1), TimeSpan.FromDays(1));
        var verifier = _kmc.Verifier();
        Assert.Same(verifier, CredentialVerifier.For(_kmc.RootPublicKey));
        var before = CryptoOperations.Now();
        Assert.True(verifier.Verify(credential, Now).Valid);
        // The same bytes again, as another entity is shown them (a copy, not the same object): no second signature check.
        var copy = new Credential(Octets.CopyFrom(credential.Der.Span));
        Assert.True(verifier.Verify(copy, Now, null, "p1", EntityKind.Pne).Valid);
        Assert.Equal(1, (CryptoOperations.Now() - before).Verifications);

        Assert.Equal(CredentialError.Expired, verifier.Verify(copy, Now.AddDays(2)).Error);
        Assert.Equal(CredentialError.NotYetValid, verifier.Verify(copy, Now.AddHours(-2)).Error);
        Assert.Equal(CredentialError.Revoked, verifier.Verify(copy, Now, new HashSet<string> { verifier.Verify(copy, Now).Credential!.Serial }).Error);
        Assert.Equal(CredentialError.WrongKind, verifier.Verify(copy, Now, null, null, EntityKind.Server).Error);
        Assert.Equal(CredentialError.WrongSubject, verifier.Verify(copy, Now, null, "p2").Error);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x30, 0x03, 0x02, 0x01 })]
    public void Garbage_is_malformed_not_an_exception(byte[] der)
    {
        Assert.Equal(CredentialError.Malformed, _kmc.Verifier().Verify(new Credential(Octets.Own(der)), Now).Error);
        Assert.Equal(CredentialError.Malformed, _kmc.Verifier().Verify(null, Now).Error);
    }
}
