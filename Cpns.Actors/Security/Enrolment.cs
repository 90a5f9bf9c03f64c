using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// Provisioned enrolment (after LwM2M bootstrap): the operator makes a one-time token for one device id and kind; the
/// server keeps only the token's key (SHA-256 of it), the device keeps the token. A first registration proves the
/// token with an HMAC over the verifier's fresh nonce, the device's id, kind and keys: whoever relays it (a PN GW)
/// cannot reuse it for other keys or another time, and an id once registered stays bound to its keys.
/// </summary>
public static class Enrolment
{
    private const string Prefix = "cpnsenrol_";

    public static string NewToken() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool IsToken(string? token) => token is { Length: > 40 and < 80 } && token.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>
    /// A fresh token for one device, and the provisioning entry the server keeps for it (the token's key only). A PN GW's
    /// <paramref name="pnSecurityCeiling"/> goes into the credential it enrols for: the most its PN is ever held to.
    /// </summary>
    public static (string Token, DeviceProvision Provision) Provision(string deviceId, EntityKind kind, long expiresAtMs,
        SecurityLevel? pnSecurityCeiling = null)
    {
        if (pnSecurityCeiling is not null && kind is not (EntityKind.PnGateway or EntityKind.Both))
            throw new ArgumentException("only a PN GW has a PN security ceiling", nameof(pnSecurityCeiling));
        var token = NewToken();
        return (token, new DeviceProvision(deviceId, kind, KeyOf(token), expiresAtMs, pnSecurityCeiling));
    }

    /// <summary>What the server keeps for a token: it checks proofs with it and never sees the token again.</summary>
    public static Octets KeyOf(string token) => Octets.Own(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public static Octets Proof(string token, string context, string deviceId, EntityKind kind, PublicKeys keys, string verifierId,
        Octets verifierNonce) =>
        Mac(KeyOf(token), context, deviceId, kind, keys, verifierId, verifierNonce);

    public static bool Verify(Octets key, Octets? proof, string context, string deviceId, EntityKind kind, PublicKeys keys,
        string verifierId, Octets verifierNonce) =>
        proof is { Length: 32 } given &&
        CryptographicOperations.FixedTimeEquals(Mac(key, context, deviceId, kind, keys, verifierId, verifierNonce).Span, given.Span);

    private static Octets Mac(Octets key, string context, string deviceId, EntityKind kind, PublicKeys keys, string verifierId,
        Octets verifierNonce) =>
        Octets.Own(HMACSHA256.HashData(key.Span, new Transcript("cpns/enrol/v1").Add(context).Add(deviceId).Add(kind.ToString())
            .Add(keys.Signing).Add(keys.Agreement).Add(verifierId).Add(verifierNonce).Bytes));
}
