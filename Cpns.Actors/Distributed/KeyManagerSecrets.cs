using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors.Distributed;

/// <summary>
/// What a gateway node holds of the distributed server's keys: the Group Key Managers' own identity and key-encryption
/// key, and the public keys it pins the server by. Never the server's signing key, the server's KEK or the KMC root key:
/// those stay in <see cref="ServerSecrets"/> on the server node. The server node makes this file next to its own (and
/// knows its public half); an operator copies it to each gateway node.
/// </summary>
public sealed record KeyManagerSecrets(EntityIdentity Identity, KeyEncryptionKey Kek, TrustAnchor Server, PublicKeys ServerKeys)
{
    public const string FileName = "key-manager-secrets.json";

    public static string IdFor(string serverId) => serverId + "-gkm";

    public KeyManagerKeys Public => new(Identity.DeviceId, Identity.PublicKeys);

    public static KeyManagerSecrets Generate(ServerSecrets server) =>
        new(EntityIdentity.Generate(IdFor(server.Identity.DeviceId), EntityKind.Server), KeyEncryptionKey.Generate(), server.TrustAnchor,
            server.Identity.PublicKeys);

    private sealed record KeyFile(
        int Version,
        string ServerId,
        string ManagerId,
        string SigningKey,
        string AgreementKey,
        string Kek,
        string KmcRootPublicKey,
        string ServerSigningPublicKey,
        string ServerAgreementPublicKey);

    /// <summary>The server node's: made on its first start, for the server the node runs.</summary>
    public static KeyManagerSecrets LoadOrCreate(string path, ServerSecrets server)
    {
        if (File.Exists(path))
        {
            var existing = Load(path, server.Identity.DeviceId);
            if (existing.ServerKeys != server.Identity.PublicKeys)
                throw new InvalidDataException($"{path} pins another key of server '{server.Identity.DeviceId}' than its key file holds");
            return existing;
        }

        var secrets = Generate(server);
        secrets.Save(path);
        return secrets;
    }

    public static KeyManagerSecrets Load(string path, string serverId)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no key manager file at {path}", path);
        SecretFiles.CheckOwnerOnly(path);
        KeyFile? file;
        try
        {
            file = JsonSerializer.Deserialize<KeyFile>(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a key manager file: {e.Message}");
        }

        if (file is null || file.Version != 1 || file.ManagerId is null || file.ServerSigningPublicKey is null)
            throw new InvalidDataException($"{path} is not a key manager file (version 1)");
        if (file.ServerId != serverId)
            throw new InvalidDataException($"{path} holds the key managers of server '{file.ServerId}', not '{serverId}'");
        var serverKeys = new PublicKeys(Octets.FromBase64(file.ServerSigningPublicKey), Octets.FromBase64(file.ServerAgreementPublicKey));
        return new KeyManagerSecrets(
            EntityIdentity.FromPrivateKeys(file.ManagerId, EntityKind.Server, Convert.FromBase64String(file.SigningKey),
                Convert.FromBase64String(file.AgreementKey)),
            KeyEncryptionKey.FromBytes(Convert.FromBase64String(file.Kek)),
            new TrustAnchor(Octets.FromBase64(file.KmcRootPublicKey), serverId, serverKeys.Signing),
            serverKeys);
    }

    public void Save(string path)
    {
        var file = new KeyFile(1, Server.ServerId!, Identity.DeviceId, Convert.ToBase64String(Identity.ExportSigningPrivateKey()),
            Convert.ToBase64String(Identity.ExportAgreementPrivateKey()), Convert.ToBase64String(Kek.Export()),
            Server.KmcRootPublicKey.ToBase64(), ServerKeys.Signing.ToBase64(), ServerKeys.Agreement.ToBase64());
        SecretFiles.Write(path, JsonSerializer.SerializeToUtf8Bytes(file));
    }
}
