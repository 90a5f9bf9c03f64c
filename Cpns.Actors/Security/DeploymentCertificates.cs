using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cpns.Actors.Security;

/// <summary>
/// The deployment's own certificate authority for the node transport (mutual TLS between cluster nodes, design
/// §5): a CA and one certificate per node, ECDSA P-256 (.NET's TLS stack takes no Ed25519 certificates). A folder holds
/// <c>ca.crt</c> (public: every node trusts it), <c>ca.key</c> (the operator's secret: only where certificates are
/// issued) and <c>&lt;node&gt;.pfx</c> (one node's certificate and private key). Secrets are written owner-only.
/// </summary>
public sealed class DeploymentCertificates
{
    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";
    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);
    private static readonly TimeSpan NodeLifetime = TimeSpan.FromDays(825);

    private DeploymentCertificates(string folder, X509Certificate2 authority)
    {
        Folder = folder;
        Authority = authority;
    }

    public string Folder { get; }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 Authority { get; }

    public bool CanIssue => File.Exists(Path.Combine(Folder, CaKeyFile));

    public static bool ExistIn(string folder) => File.Exists(Path.Combine(folder, CaCertificateFile));

    /// <summary>Makes a new deployment CA in <paramref name="folder"/>; refuses to replace one that is there.</summary>
    public static DeploymentCertificates CreateAuthority(string folder, string deploymentName = "cpns")
    {
        Directory.CreateDirectory(folder);
        if (ExistIn(folder))
            throw new InvalidOperationException($"{folder} already holds a deployment CA ({CaCertificateFile}); it is never replaced");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={deploymentName} deployment CA, O=CPNS", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var authority = request.CreateSelfSigned(now.AddMinutes(-5), now + CaLifetime);
        WriteSecret(Path.Combine(folder, CaKeyFile), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(folder, CaCertificateFile), authority.ExportCertificatePem());
        return Open(folder);
    }

    /// <summary>The deployment CA of <paramref name="folder"/> (its public certificate; the key is read only to issue).</summary>
    public static DeploymentCertificates Open(string folder)
    {
        var path = Path.Combine(folder, CaCertificateFile);
        if (!File.Exists(path))
            throw new FileNotFoundException($"no deployment CA in {folder} ({CaCertificateFile} is missing): run `cpns certs`", path);
        var authority = X509Certificate2.CreateFromPem(File.ReadAllText(path));
        if (authority.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
            throw new InvalidDataException($"{path} is not a CA certificate");
        return new DeploymentCertificates(folder, authority);
    }

    public static string NodeFile(string nodeName) => $"{nodeName}.pfx";

    public bool HasNode(string nodeName) => File.Exists(Path.Combine(Folder, NodeFile(nodeName)));

    /// <summary>Issues a node certificate (server and client authentication, for 127.0.0.1 and the given host names).</summary>
    public X509Certificate2 IssueNode(string nodeName, IEnumerable<string>? hostnames = null)
    {
        if (!IsValidNodeName(nodeName))
            throw new ArgumentException($"'{nodeName}' is not a node name (letters, digits, '-', '_', '.', at most 64)", nameof(nodeName));
        var keyPath = Path.Combine(Folder, CaKeyFile);
        if (!File.Exists(keyPath))
            throw new InvalidOperationException($"{Folder} holds no CA key ({CaKeyFile}): node certificates are issued where the operator keeps it");
        using var caKey = ECDsa.Create();
        caKey.ImportFromPem(File.ReadAllText(keyPath));
        using var issuer = Authority.CopyWithPrivateKey(caKey);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={nodeName}, O=CPNS", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        foreach (var host in hostnames ?? [])
        {
            if (IPAddress.TryParse(host, out var ip))
                names.AddIpAddress(ip);
            else
                names.AddDnsName(host);
        }

        request.CertificateExtensions.Add(names.Build());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var now = DateTimeOffset.UtcNow;
        var notAfter = now + NodeLifetime < Authority.NotAfter ? now + NodeLifetime : new DateTimeOffset(Authority.NotAfter);
        using var issued = request.Create(issuer, now.AddMinutes(-5), notAfter, serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        WriteSecret(Path.Combine(Folder, NodeFile(nodeName)), withKey.Export(X509ContentType.Pkcs12));
        return LoadNode(nodeName);
    }

    /// <summary>A node's certificate with its private key, checked to come from this deployment's CA.</summary>
    public X509Certificate2 LoadNode(string nodeName)
    {
        var path = Path.Combine(Folder, NodeFile(nodeName));
        if (!File.Exists(path))
            throw new FileNotFoundException($"no certificate for node '{nodeName}' in {Folder} ({NodeFile(nodeName)}): run `cpns certs --node {nodeName}`", path);
        var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, null, X509KeyStorageFlags.Exportable);
        if (!certificate.HasPrivateKey)
            throw new InvalidDataException($"{path} holds no private key");
        if (!IsIssuedBy(certificate, out var problem))
            throw new InvalidDataException($"{path} is not a certificate of the deployment CA in {Folder}: {problem}");
        return certificate;
    }

    /// <summary>Whether a peer's certificate chains to this deployment's CA (and nothing else), is current and fit for TLS.</summary>
    public bool IsIssuedBy(X509Certificate2 certificate, out string problem)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (!chain.Build(certificate))
        {
            problem = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
            return false;
        }

        var root = chain.ChainElements[^1].Certificate;
        if (!root.RawDataMemory.Span.SequenceEqual(Authority.RawDataMemory.Span))
        {
            problem = "it chains to another root";
            return false;
        }

        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is { CertificateAuthority: true })
        {
            problem = "it is a CA certificate, not a node's";
            return false;
        }

        problem = "";
        return true;
    }

    public static bool IsValidNodeName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static void WriteSecret(string path, ReadOnlySpan<char> text) => WriteSecret(path, System.Text.Encoding.UTF8.GetBytes(text.ToArray()));

    private static void WriteSecret(string path, byte[] bytes) => SecretFiles.Write(path, bytes, overwrite: false);
}
