using Cpns.Actors.Protocol;
namespace Cpns.Actors.Security;

/// <summary>
/// What a device is provisioned with before it first registers: the KMC's root public key, against which it checks
/// every credential it is shown (the server's, its PN GW's), and the one server it may register with — that server's id
/// and signing key, pinned: another Server credential from the same KMC root (a second server, a rogue one) is refused.
/// </summary>
public sealed record TrustAnchor(Octets KmcRootPublicKey, string? ServerId = null, Octets? ServerSigningKey = null)
{
    public CredentialVerifier Verifier() => CredentialVerifier.For(KmcRootPublicKey);

    /// <summary>Why a server that proved its credential is still not ours, or null when it is the pinned one (or none is pinned).</summary>
    public string? PinProblem(string serverId, Octets signingKey) =>
        ServerId is not null && serverId != ServerId ? $"the server is {serverId}, not the pinned {ServerId}"
        : ServerSigningKey is not null && signingKey != ServerSigningKey ? $"{serverId} signs with another key than the pinned one"
        : null;
}
