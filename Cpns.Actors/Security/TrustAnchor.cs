namespace Cpns.Actors.Security;

/// <summary>
/// What a device is provisioned with before it first registers: the KMC's root public key, against which it
/// checks every credential it is shown (the server's, its PN GW's).
/// </summary>
public sealed record TrustAnchor(Octets KmcRootPublicKey)
{
    public CredentialVerifier Verifier() => new(KmcRootPublicKey);
}
