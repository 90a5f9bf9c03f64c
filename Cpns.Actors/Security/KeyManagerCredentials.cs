using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// Who may act as one of a server's Group Key Managers: whoever holds a KMC credential of kind KeyManager for one of
/// that server's manager ids (<c>&lt;server id&gt;-gkm-&lt;node&gt;</c>). The server and PN GWs check it the same way.
/// </summary>
public static class KeyManagerCredentials
{
    public static bool IsManagerOf(string serverId, string managerId) =>
        managerId.StartsWith(serverId + "-gkm-", StringComparison.Ordinal);

    /// <summary>The public keys of manager <paramref name="managerId"/> if the credential proves it one of the server's; else null.</summary>
    public static PublicKeys? KeysOf(CredentialVerifier verifier, Credential? credential, string managerId, string serverId,
        DateTimeOffset now) =>
        credential is not null && IsManagerOf(serverId, managerId)
            ? verifier.Verify(credential, now, null, managerId, EntityKind.KeyManager).Credential?.Keys
            : null;
}
