using System.Text.Json.Serialization;
using Akka.Actor;

namespace Cpns.Actors.Protocol;

public enum RegistrationError
{
    InvalidRequest,
    UnknownGateway,
    WrongGateway,
    DuplicateDevice,
    NotRegistered,
    AuthenticationFailed,
    NotAuthorized,
    Busy,
}

// ---- PN GW ↔ CPNS Server (CPNS-2/3/4) ----

/// <summary>
/// A PN GW registers with the server's registry. A first registration (no credential, an id not yet bound to keys)
/// carries <paramref name="Enrolment"/>: the proof of the one-time token the operator provisioned for this id and kind
/// (<c>Security.Enrolment</c>).
/// </summary>
public sealed record RegisterGateway(
    string GatewayId,
    EntityKind Kind,
    PublicKeys Keys,
    Credential? Credential,
    AuthProof Proof,
    DeviceCapabilities Capabilities,
    int LifetimeSeconds,
    GatewayEndpoints Endpoints,
    Octets? Enrolment = null) : ICpnsMessage, IWithGatewayId;

/// <summary>Accepted: the PN GW's registration id and lease, its credential from the KMC, and the server's functions.</summary>
public sealed record GatewayRegistered(
    string GatewayId,
    string RegistrationId,
    int LifetimeSeconds,
    Credential Credential,
    ServerEndpoints Server,
    string BootId) : ICpnsMessage, IWithGatewayId;

/// <summary>A PN GW forwards the registrations of the PNEs of its PN, as one batch.</summary>
public sealed record RegisterPnes(string GatewayId, IReadOnlyList<PneRegistration> Pnes) : ICpnsMessage, IWithGatewayId;

/// <summary>
/// One PNE's registration as its PN GW forwards it: with the PNE's fresh proof (the server checks it too), or —
/// when the PN GW registers its PN again after a restart — with the PNE's credential alone.
/// </summary>
/// <remarks>
/// <paramref name="Moving"/> says the forwarding PN GW agreed to take the PNE over from another PN (a bridge or a
/// PN GW change); without it the server refuses a PNE that is registered through another PN GW.
/// </remarks>
public sealed record PneRegistration(
    string DeviceId,
    PublicKeys Keys,
    Credential? Credential,
    AuthProof? Proof,
    DeviceCapabilities Capabilities,
    int LifetimeSeconds,
    PneEndpoints Endpoints,
    bool Moving = false,
    Octets? Enrolment = null,
    MoveConsent? MoveConsent = null) : ICpnsMessage, IWithDeviceId;

/// <summary>The batch's results; when the registry was busy, every result is <see cref="RegistrationError.Busy"/> and the batch waits <paramref name="RetryAfterMs"/>.</summary>
public sealed record PnesRegistered(string GatewayId, IReadOnlyList<PneRegistrationResult> Results, int RetryAfterMs = 0)
    : ICpnsMessage, IWithGatewayId;

public sealed record PneRegistrationResult(
    string DeviceId,
    string? RegistrationId,
    int LifetimeSeconds,
    Credential? Credential,
    RegistrationError? Error,
    AuthFailure? Auth,
    string? Detail) : ICpnsMessage, IWithDeviceId
{
    public bool Accepted => Error is null;
}

/// <summary>Refused; a <see cref="RegistrationError.Busy"/> refusal says how long to wait before asking again.</summary>
public sealed record RegistrationRejected(string DeviceId, RegistrationError Error, string Detail, AuthFailure? Auth = null,
    int RetryAfterMs = 0) : ICpnsMessage, IWithDeviceId;

// ---- PNE ↔ PN GW (CPNS-1) ----

/// <summary>A PNE registers with the PN GW of its PN.</summary>
public sealed record RegisterPne(
    string DeviceId,
    PublicKeys Keys,
    Credential? Credential,
    AuthProof Proof,
    DeviceCapabilities Capabilities,
    int LifetimeSeconds,
    PneEndpoints Endpoints,
    Octets? Enrolment = null) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// Accepted: the PNE's registration, its credential, its PN GW, and the server's id and credential (the PNE checks
/// epoch announcements signed by the server's key manager with it).
/// </summary>
public sealed record PneRegistered(
    string DeviceId,
    string GatewayId,
    string RegistrationId,
    int LifetimeSeconds,
    Credential Credential,
    PublicKeys GatewayKeys,
    GatewayEndpoints Gateway,
    Credential ServerCredential) : ICpnsMessage, IWithDeviceId
{
    /// <summary>The server's revocation notices the PN GW holds, so a PNE refuses revoked PN GWs from its first registration on.</summary>
    public IReadOnlyList<RevocationNotice> Revocations { get; init; } = [];
}

// ---- Inside the server: the registry tells the SMF where entities are ----

public sealed record GatewayPlaced(
    string GatewayId,
    EntityKind Kind,
    PublicKeys Keys,
    SecurityLevel PnSecurityLevel,
    GatewayEndpoints Endpoints) : INodeLocal, IWithGatewayId;

public sealed record PlacedPne(string DeviceId, PublicKeys Keys) : ICpnsMessage, IWithDeviceId;

public sealed record PnesPlaced(string GatewayId, IReadOnlyList<PlacedPne> Pnes) : INodeLocal, IWithGatewayId;

public sealed record EntitiesRemoved(IReadOnlyList<string> DeviceIds, bool Revoked) : INodeLocal;

// ---- Inside a PN GW: its connections tell its SMF and CSKMF which PNEs are attached ----

public sealed record PneAttached(string DeviceId, PublicKeys Keys, PneEndpoints Endpoints) : INodeLocal, IWithDeviceId;

public sealed record PneDetached(string DeviceId) : INodeLocal, IWithDeviceId;


// ---- Inside a PNE: its GW became known ----

public sealed record GatewayAttached(string GatewayId, PublicKeys Keys, GatewayEndpoints Gateway, string ServerId, PublicKeys ServerKeys)
    : INodeLocal, IWithGatewayId;

// ---- Provisioning: the operator's one-time enrolment tokens (node-local) ----

/// <summary>One device the operator allows to enrol: its id, its kind, the key of its token, until when.</summary>
/// <param name="PnSecurityCeiling">A PN GW's: the highest PN security level its credential will let it claim (none: any).</param>
public sealed record DeviceProvision(
    string DeviceId,
    EntityKind Kind,
    Octets EnrolmentKey,
    long ExpiresAtMs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SecurityLevel? PnSecurityCeiling = null)
    : ICpnsMessage, IWithDeviceId;

public sealed record ProvisionDevices(IReadOnlyList<DeviceProvision> Devices) : INodeLocal;

public sealed record ProvisioningRefusal(string DeviceId, string Detail) : INodeLocal, IWithDeviceId;

/// <summary>The devices now provisioned (a token made again for a device not yet enrolled replaces the old one), and those refused.</summary>
public sealed record DevicesProvisioned(IReadOnlyList<string> DeviceIds, IReadOnlyList<ProvisioningRefusal> Refused) : INodeLocal;

// ---- Queries ----

public sealed record GetInventory : INodeLocal
{
    public static readonly GetInventory Instance = new();
}

public sealed record InventoryEntry(
    string DeviceId,
    EntityKind Kind,
    string GatewayId,
    string RegistrationId) : ICpnsMessage, IWithDeviceId;

public sealed record Inventory(IReadOnlyList<InventoryEntry> Gateways, IReadOnlyList<InventoryEntry> Pnes)
    : INodeLocal;

/// <summary>Asks a PN GW or PNE whether it has finished registering.</summary>
public sealed record GetRegistrationStatus : INodeLocal
{
    public static readonly GetRegistrationStatus Instance = new();
}

public sealed record RegistrationStatus(string DeviceId, bool Registered, string? RegistrationId, int AttachedPnes)
    : INodeLocal, IWithDeviceId;

/// <summary>Published on the event stream when a PN GW or PNE completes registration.</summary>
public sealed record EntityRegistered(string DeviceId, EntityKind Kind, string RegistrationId)
    : ICpnsMessage, IWithDeviceId;
