using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server's long-term secrets: its identity key pairs, the KMC's key-encryption key and the KMC's root
/// signing key. A server that restarts on the same database needs the same secrets to open the key epochs it
/// journaled and to keep the credentials it issued valid, so they live in a key file (owner-only permissions)
/// in the data folder.
/// </summary>
public sealed record ServerSecrets(EntityIdentity Identity, KeyEncryptionKey Kek, CredentialAuthority Authority)
{
    public const string FileName = "server-secrets.json";

    public static ServerSecrets Generate(string serverId) =>
        new(EntityIdentity.Generate(serverId, EntityKind.Server), KeyEncryptionKey.Generate(),
            CredentialAuthority.Generate(serverId + "-kmc"));

    /// <summary>What every device is provisioned with to check credentials: the KMC's root public key.</summary>
    public TrustAnchor TrustAnchor => new(Authority.RootPublicKey, Identity.DeviceId, Identity.PublicKeys.Signing);

    private sealed record KeyFile(int Version, string ServerId, string SigningKey, string AgreementKey, string Kek, string KmcRootKey);

    public static ServerSecrets LoadOrCreate(string path, string serverId)
    {
        if (File.Exists(path))
            return Load(path, serverId);
        var secrets = Generate(serverId);
        secrets.Save(path);
        return secrets;
    }

    /// <summary>An existing key file, whichever server it is of (the operator's tools on the server's host).</summary>
    public static ServerSecrets Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no server key file at {path}", path);
        SecretFiles.CheckOwnerOnly(path);
        var serverId = JsonSerializer.Deserialize<KeyFile>(File.ReadAllBytes(path))?.ServerId
                       ?? throw new InvalidDataException($"{path} names no server");
        return Load(path, serverId);
    }

    /// <summary>An existing key file of server <paramref name="serverId"/>.</summary>
    public static ServerSecrets Load(string path, string serverId)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no server key file at {path}", path);
        // Secrets others can read are secrets no more: refuse the file rather than use it.
        SecretFiles.CheckOwnerOnly(path);
        {
            var file = JsonSerializer.Deserialize<KeyFile>(File.ReadAllBytes(path))
                       ?? throw new InvalidDataException($"{path} is empty");
            if (file.Version != 1)
                throw new InvalidDataException($"{path}: unsupported key file version {file.Version}");
            if (file.ServerId != serverId)
                throw new InvalidDataException($"{path} holds the secrets of server '{file.ServerId}', not '{serverId}'");
            return new ServerSecrets(
                EntityIdentity.FromPrivateKeys(serverId, EntityKind.Server, Convert.FromBase64String(file.SigningKey),
                    Convert.FromBase64String(file.AgreementKey)),
                KeyEncryptionKey.FromBytes(Convert.FromBase64String(file.Kek)),
                CredentialAuthority.FromPrivateKey(serverId + "-kmc", Convert.FromBase64String(file.KmcRootKey)));
        }
    }

    public void Save(string path)
    {
        var file = new KeyFile(1, Identity.DeviceId, Convert.ToBase64String(Identity.ExportSigningPrivateKey()),
            Convert.ToBase64String(Identity.ExportAgreementPrivateKey()), Convert.ToBase64String(Kek.Export()),
            Convert.ToBase64String(Authority.ExportPrivateKey()));
        SecretFiles.Write(path, JsonSerializer.SerializeToUtf8Bytes(file));
    }
}
