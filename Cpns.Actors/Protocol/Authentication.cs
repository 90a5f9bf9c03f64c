
namespace Cpns.Actors.Protocol;

/// <summary>Why an authentication failed.</summary>
public enum AuthFailure
{
    BadSignature,
    UnknownIssuer,
    Expired,
    NotYetValid,
    Revoked,
    WrongKind,
    WrongSubject,
    MalformedCredential,
    NoChallenge,
    KeyMismatch,
    NotProvisioned,
}

/// <summary>
/// Mutual challenge–response, step 1 (entity → verifier: the server for a PN GW, the PN GW for a PNE): who
/// the entity is, its keys and credential (if it has one yet), and a fresh nonce.
/// </summary>
public sealed record AuthHello(
    string DeviceId,
    EntityKind Kind,
    PublicKeys Keys,
    Credential? Credential,
    Octets ClientNonce,
    string Context) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// Step 2 (verifier → entity): the verifier's credential, its own fresh nonce, and its signature over both nonces,
/// both ids and the context — the entity authenticates the verifier with it.
/// </summary>
public sealed record AuthChallenge(
    string DeviceId,
    string VerifierId,
    Credential VerifierCredential,
    Octets ClientNonce,
    Octets VerifierNonce,
    Octets VerifierSignature) : ICpnsMessage, IWithDeviceId;

/// <summary>Step 3, carried in the registration: the entity's signature over the same nonces, ids and context.</summary>
public sealed record AuthProof(string Context, Octets ClientNonce, Octets VerifierNonce, Octets Signature) : ICpnsMessage;

public static class AuthTranscripts
{
    /// <summary>The reference point a PN GW authenticates over (with the server): CPNS-2/3/4.</summary>
    public const string GatewayContext = "cpns-2/3/4";

    /// <summary>The reference point a PNE authenticates over (with its PN GW): CPNS-1.</summary>
    public const string PneContext = "cpns-1";

    public static Transcript Verifier(string context, string deviceId, string verifierId, Octets clientNonce, Octets verifierNonce) =>
        new Transcript("cpns/auth/v1/verifier").Add(context).Add(deviceId).Add(verifierId).Add(clientNonce).Add(verifierNonce);

    public static Transcript Client(string context, string deviceId, string verifierId, Octets clientNonce, Octets verifierNonce) =>
        new Transcript("cpns/auth/v1/client").Add(context).Add(deviceId).Add(verifierId).Add(clientNonce).Add(verifierNonce);

    public static AuthFailure FromCredentialError(CredentialError error) => error switch
    {
        CredentialError.UnknownIssuer => AuthFailure.UnknownIssuer,
        CredentialError.BadSignature => AuthFailure.BadSignature,
        CredentialError.Expired => AuthFailure.Expired,
        CredentialError.NotYetValid => AuthFailure.NotYetValid,
        CredentialError.Revoked => AuthFailure.Revoked,
        CredentialError.WrongKind => AuthFailure.WrongKind,
        CredentialError.WrongSubject => AuthFailure.WrongSubject,
        _ => AuthFailure.MalformedCredential,
    };
}

// ---- Device ID/Key assignment: the registry asks the KMC for credentials ----

public sealed record CredentialRequest(string DeviceId, EntityKind Kind, PublicKeys Keys, SecurityLevel? PnSecurityCeiling = null)
    : ICpnsMessage, IWithDeviceId;

public sealed record IssueCredentials(long RequestId, IReadOnlyList<CredentialRequest> Requests) : INodeLocal;

public sealed record IssuedCredential(string DeviceId, Credential Credential, string Serial) : ICpnsMessage, IWithDeviceId;

public sealed record CredentialsIssued(long RequestId, IReadOnlyList<IssuedCredential> Credentials) : INodeLocal;

// ---- Revocation ----

/// <summary>An operator revokes a device's credentials: it is deregistered and can no longer authenticate.</summary>
public sealed record RevokeCredential(string DeviceId, string Reason) : INodeLocal, IWithDeviceId;

public sealed record CredentialRevocationAccepted(string DeviceId, IReadOnlyList<string> Serials) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// The server tells every PN GW, so a revoked PNE is refused on CPNS-1 too; the PN GW passes the server's signed
/// <paramref name="Notice"/> on to its PNEs, so they refuse a revoked PN GW.
/// </summary>
public sealed record CredentialRevoked(string DeviceId, IReadOnlyList<string> Serials, RevocationNotice Notice) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// The server's signed word that these credentials of a device are revoked. It is checked against the server the
/// receiver registered with, not against whoever passed it on: a PN GW can carry it to its PNEs but not make one up.
/// </summary>
public sealed record RevocationNotice(string DeviceId, IReadOnlyList<string> Serials, long RevokedAtMs, string ServerId, Octets Signature)
    : ICpnsMessage, IWithDeviceId
{
    public static Transcript SignedPart(string deviceId, IReadOnlyList<string> serials, long revokedAtMs, string serverId)
    {
        var transcript = new Transcript("cpns/revocation/v1").Add(deviceId).Add(revokedAtMs).Add(serverId).Add(serials.Count);
        foreach (var serial in serials)
            transcript = transcript.Add(serial);
        return transcript;
    }
}

/// <summary>Asks a PN GW or a PNE which credentials it refuses as revoked.</summary>
public sealed record GetKnownRevocations : INodeLocal
{
    public static readonly GetKnownRevocations Instance = new();
}

public sealed record KnownRevocations(IReadOnlyList<string> DeviceIds, IReadOnlyList<string> Serials) : INodeLocal;

// ---- Envelope refusals and counters ----

/// <summary>The answer to an envelope that was refused (it is also counted and logged).</summary>
public sealed record EnvelopeRejected(EnvelopeRejection Reason, string Detail) : ICpnsMessage;

public sealed record GetSecurityCounters : INodeLocal
{
    public static readonly GetSecurityCounters Instance = new();
}

public sealed record SecurityCounters(string Receiver, IReadOnlyDictionary<string, long> Rejections) : INodeLocal
{
    /// <summary>The function's sessions: handshakes started and established, records sent and opened, records sent again, open now.</summary>
    public IReadOnlyDictionary<string, long> Sessions { get; init; } = new Dictionary<string, long>();
}
