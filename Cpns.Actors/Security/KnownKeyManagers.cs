using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The Group Key Managers one receiver has met: whoever holds a KMC credential of kind KeyManager for one of this
/// server's manager ids (<c>&lt;server id&gt;-gkm-&lt;node&gt;</c>). The server and PN GWs check them the same way. Every
/// message of a manager carries its credential; it is checked once (a manager is one per gateway node) and then known.
/// </summary>
public sealed class KnownKeyManagers(CredentialVerifier verifier, string serverId)
{
    private const int MaxCredentials = 256;

    private readonly Dictionary<Octets, VerifiedCredential> _checked = new();
    private readonly Dictionary<string, PublicKeys> _keys = new(StringComparer.Ordinal);

    public static bool IsManagerOf(string serverId, string managerId) =>
        managerId.StartsWith(serverId + "-gkm-", StringComparison.Ordinal);

    /// <summary>The manager a credential proves, or null if it is not a valid KeyManager credential of this server.</summary>
    public VerifiedCredential? Check(Credential credential, DateTimeOffset now)
    {
        if (_checked.TryGetValue(credential.Der, out var known) && now <= known.NotAfter)
            return known;
        var check = verifier.Verify(credential, now, null, null, EntityKind.KeyManager);
        if (check.Credential is not { } manager || !IsManagerOf(serverId, manager.DeviceId))
            return null;
        if (_checked.Count >= MaxCredentials)
            _checked.Clear();
        _checked[credential.Der] = manager;
        _keys[manager.DeviceId] = manager.Keys;
        return manager;
    }

    public bool Knows(string managerId) => _keys.ContainsKey(managerId);

    public PublicKeys KeysOf(string managerId) => _keys[managerId];
}
