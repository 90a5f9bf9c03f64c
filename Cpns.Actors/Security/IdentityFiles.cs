using System.Text.Json;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The entity identities a node hosts, one owner-only key file each in a folder of its data, so a node started again
/// brings its PN GWs and PNEs back with the keys their ids are bound to (an id never changes keys).
/// </summary>
public sealed class IdentityFiles(string folder)
{
    private sealed record KeyFile(int Version, string DeviceId, EntityKind Kind, string SigningKey, string AgreementKey);

    public string Folder { get; } = folder;

    public EntityIdentity LoadOrCreate(string deviceId, EntityKind kind)
    {
        if (!DeviceIds.IsValid(deviceId))
            throw new ArgumentException($"'{deviceId}' is not a valid device id", nameof(deviceId));
        var path = Path.Combine(Folder, deviceId + ".key.json");
        if (File.Exists(path))
        {
            SecretFiles.CheckOwnerOnly(path);
            var file = JsonSerializer.Deserialize<KeyFile>(File.ReadAllBytes(path)) ?? throw new InvalidDataException($"{path} is empty");
            if (file.Version != 1 || file.DeviceId != deviceId || file.Kind != kind)
                throw new InvalidDataException($"{path} holds the keys of {file.Kind} '{file.DeviceId}', not of {kind} '{deviceId}'");
            return EntityIdentity.FromPrivateKeys(deviceId, kind, Convert.FromBase64String(file.SigningKey),
                Convert.FromBase64String(file.AgreementKey));
        }

        var identity = EntityIdentity.Generate(deviceId, kind);
        SecretFiles.Write(path, JsonSerializer.SerializeToUtf8Bytes(new KeyFile(1, deviceId, kind,
            Convert.ToBase64String(identity.ExportSigningPrivateKey()), Convert.ToBase64String(identity.ExportAgreementPrivateKey()))),
            overwrite: false);
        return identity;
    }

    public bool Has(string deviceId) => File.Exists(Path.Combine(Folder, deviceId + ".key.json"));

    private string EnrolmentPath(string deviceId) => Path.Combine(Folder, deviceId + ".enrol");

    /// <summary>The one-time enrolment token the operator provisioned for a device of this node, if there is one.</summary>
    public string? EnrolmentToken(string deviceId)
    {
        var path = EnrolmentPath(deviceId);
        if (!File.Exists(path))
            return null;
        SecretFiles.CheckOwnerOnly(path);
        var token = File.ReadAllText(path).Trim();
        return Enrolment.IsToken(token) ? token : throw new InvalidDataException($"{path} holds no enrolment token");
    }

    public void SaveEnrolmentToken(string deviceId, string token) =>
        SecretFiles.Write(EnrolmentPath(deviceId), System.Text.Encoding.UTF8.GetBytes(token + "\n"));
}
