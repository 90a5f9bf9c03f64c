using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors.Distributed;

/// <summary>
/// What a gateway node holds of the distributed server's keys: its own Group Key Manager identity, the KMC credential
/// that says so, its own key-encryption key, and the public keys it pins the server by. Never the server's signing key,
/// the server's KEK or the KMC root key (those stay in <see cref="ServerSecrets"/> on the server node), and never another
/// gateway node's: each node has its own file, made by <c>cpns provision</c> on the server's host for that node.
/// </summary>
public sealed record KeyManagerSecrets(EntityIdentity Identity, KeyEncryptionKey Kek, TrustAnchor Server, PublicKeys ServerKeys,
    Credential Credential)
{
    /// <summary>How long a manager's credential is valid: provisioning the node again renews it.</summary>
    public static readonly TimeSpan CredentialValidity = TimeSpan.FromDays(5 * 365);

    public static string FileNameFor(string nodeName) => $"key-manager-{nodeName}.json";

    /// <summary>The manager ids of one server: <c>&lt;server id&gt;-gkm-&lt;node name&gt;</c>.</summary>
    public static string IdFor(string serverId, string nodeName) => $"{serverId}-gkm-{nodeName}";

    public static KeyManagerSecrets Generate(ServerSecrets server, string nodeName, DateTimeOffset now)
    {
        var identity = EntityIdentity.Generate(IdFor(server.Identity.DeviceId, nodeName), EntityKind.KeyManager);
        var credential = server.Authority.Issue(identity.DeviceId, EntityKind.KeyManager, identity.PublicKeys, now.AddMinutes(-5),
            CredentialValidity);
        return new KeyManagerSecrets(identity, KeyEncryptionKey.Generate(), server.TrustAnchor, server.Identity.PublicKeys, credential);
    }

    private sealed record KeyFile(
        int Version,
        string ServerId,
        string ManagerId,
        string SigningKey,
        string AgreementKey,
        string Kek,
        string KmcRootPublicKey,
        string ServerSigningPublicKey,
        string ServerAgreementPublicKey,
        string? Credential);

    /// <summary>
    /// <c>cpns provision</c>'s, on the server's host: the file of gateway node <paramref name="nodeName"/>, made once (its
    /// journal is sealed under its KEK, so it is kept, not made again, when the node is provisioned again).
    /// </summary>
    public static KeyManagerSecrets LoadOrCreate(string path, ServerSecrets server, string nodeName, DateTimeOffset now)
    {
        if (File.Exists(path))
        {
            var existing = Load(path, server.Identity.DeviceId);
            if (existing.ServerKeys != server.Identity.PublicKeys)
                throw new InvalidDataException($"{path} pins another key of server '{server.Identity.DeviceId}' than its key file holds");
            if (existing.Identity.DeviceId != IdFor(server.Identity.DeviceId, nodeName))
                throw new InvalidDataException($"{path} is the key manager of {existing.Identity.DeviceId}, not of node '{nodeName}'");
            return existing;
        }

        var secrets = Generate(server, nodeName, now);
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

        if (file is { Version: 1, ManagerId: not null })
            throw new InvalidDataException($"{path} is a key manager file of an older release, shared by every gateway node; " +
                                           "run cpns provision for this node to make its own");
        if (file is null || file.Version != 2 || file.ManagerId is null || file.ServerSigningPublicKey is null || file.Credential is null)
            throw new InvalidDataException($"{path} is not a key manager file (version 2)");
        if (file.ServerId != serverId)
            throw new InvalidDataException($"{path} holds the key manager of server '{file.ServerId}', not '{serverId}'");
        var serverKeys = new PublicKeys(Octets.FromBase64(file.ServerSigningPublicKey), Octets.FromBase64(file.ServerAgreementPublicKey));
        return new KeyManagerSecrets(
            EntityIdentity.FromPrivateKeys(file.ManagerId, EntityKind.KeyManager, Convert.FromBase64String(file.SigningKey),
                Convert.FromBase64String(file.AgreementKey)),
            KeyEncryptionKey.FromBytes(Convert.FromBase64String(file.Kek)),
            new TrustAnchor(Octets.FromBase64(file.KmcRootPublicKey), serverId, serverKeys.Signing),
            serverKeys,
            new Credential(Octets.FromBase64(file.Credential)));
    }

    public void Save(string path)
    {
        var file = new KeyFile(2, Server.ServerId!, Identity.DeviceId, Convert.ToBase64String(Identity.ExportSigningPrivateKey()),
            Convert.ToBase64String(Identity.ExportAgreementPrivateKey()), Convert.ToBase64String(Kek.Export()),
            Server.KmcRootPublicKey.ToBase64(), ServerKeys.Signing.ToBase64(), ServerKeys.Agreement.ToBase64(), Credential.Der.ToBase64());
        SecretFiles.Write(path, JsonSerializer.SerializeToUtf8Bytes(file));
    }
}
