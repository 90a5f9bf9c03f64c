using System.Text.Json.Serialization;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Persistence;

// ---- Registry ----

public sealed record GatewayRecord(
    string GatewayId,
    EntityKind Kind,
    PublicKeys Keys,
    DeviceCapabilities Capabilities,
    string CredentialSerial,
    GatewayEndpoints Endpoints,
    string RegistrationId,
    int LifetimeSeconds,
    long LeaseStartMs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SecurityLevel? PnSecurityCeiling = null)
    : ICpnsMessage, IWithGatewayId
{
    public long ExpiresAtMs => LeaseStartMs + LifetimeSeconds * 1000L;

    /// <summary>The level the server holds this PN to: what the PN GW declares, never above what its credential allows.</summary>
    public SecurityLevel HeldPnSecurityLevel() => PnSecurity.Held(Capabilities.PnSecurityLevel, PnSecurityCeiling);
}

public sealed record PneRecord(
    string DeviceId,
    string GatewayId,
    PublicKeys Keys,
    DeviceCapabilities Capabilities,
    string CredentialSerial,
    PneEndpoints Endpoints,
    string RegistrationId,
    int LifetimeSeconds,
    long LeaseStartMs) : ICpnsMessage, IWithDeviceId
{
    public long ExpiresAtMs => LeaseStartMs + LifetimeSeconds * 1000L;
}

public sealed record GatewayRegisteredEvent(GatewayRecord Gateway, long RegistrationNumber) : ICpnsEvent;

/// <summary>A registered PN GW reported a new capability document of its own (and so perhaps a new PN security level).</summary>
public sealed record GatewayCapabilitiesChangedEvent(string GatewayId, DeviceCapabilities Capabilities) : ICpnsEvent;

/// <summary>One event for a whole batch of PNE registrations from one PN GW: one journal round trip.</summary>
public sealed record PnesRegisteredEvent(string GatewayId, IReadOnlyList<PneRecord> Pnes, long LastRegistrationNumber)
    : ICpnsEvent;

/// <summary>Leases renewed (a PN GW's batch): each lease starts again at <paramref name="AtMs"/> with its lifetime.</summary>
public sealed record LeasesRefreshedEvent(IReadOnlyList<LeaseRefresh> Refreshes, long AtMs) : ICpnsEvent;

/// <summary>Registrations removed: deregistered on purpose, or expired (a PN GW's expiry takes its PNEs with it).</summary>
public sealed record EntitiesDeregisteredEvent(IReadOnlyList<string> DeviceIds, DeregistrationReason Reason) : ICpnsEvent;

/// <summary>A device's credentials were revoked; it was deregistered and may not authenticate again.</summary>
public sealed record CredentialRevokedEvent(string DeviceId, IReadOnlyList<string> Serials, string Reason) : ICpnsEvent;

public sealed record RegistrySnapshot(
    IReadOnlyList<GatewayRecord> Gateways,
    IReadOnlyList<PneRecord> Pnes,
    long LastRegistrationNumber,
    IReadOnlyList<string> RevokedDevices,
    IReadOnlyList<string> RevokedSerials,
    IReadOnlyList<BoundKeys>? Bound = null,
    IReadOnlyList<DeviceProvision>? Provisioned = null) : ICpnsEvent;

/// <summary>The operator provisioned devices for enrolment (their token keys; a registration consumes its entry).</summary>
public sealed record DevicesProvisionedEvent(IReadOnlyList<DeviceProvision> Devices) : ICpnsEvent;

/// <summary>The keys an id registered with: it stays bound to them after its lease ends (snapshots written before had none).</summary>
public sealed record BoundKeys(string DeviceId, PublicKeys Keys) : ICpnsMessage;

// ---- Server SMF: service groups ----

public sealed record GroupCreatedEvent(
    string GroupId,
    string Owner,
    DeliveryMode Mode,
    long Epoch,
    IReadOnlyList<string> Members,
    SecurityLevel RequiredSecurityLevel,
    JoinPolicy JoinPolicy) : ICpnsEvent;

public sealed record MemberAddedEvent(string GroupId, string MemberId, long Epoch, Privilege Privilege) : ICpnsEvent;

public sealed record PrivilegeGrantedEvent(string GroupId, string SubjectId, Privilege Privilege) : ICpnsEvent;

public sealed record GroupRekeyedEvent(string GroupId, long Epoch) : ICpnsEvent;

public sealed record MemberRemovedEvent(string GroupId, string MemberId, long Epoch) : ICpnsEvent;

public sealed record GroupDeletedEvent(string GroupId, long FinalEpoch) : ICpnsEvent;

public sealed record GroupSnapshotEntry(
    string GroupId,
    string Owner,
    DeliveryMode Mode,
    long Epoch,
    IReadOnlyList<string> Members,
    SecurityLevel RequiredSecurityLevel,
    JoinPolicy JoinPolicy,
    IReadOnlyList<AclEntry> Acl,
    long LastRekeyMs) : ICpnsMessage;

public sealed record DeletedGroupEntry(string GroupId, long FinalEpoch) : ICpnsMessage;

public sealed record SmfSnapshot(IReadOnlyList<GroupSnapshotEntry> Groups, IReadOnlyList<DeletedGroupEntry> DeletedGroups)
    : ICpnsEvent;

// ---- Server CSKMF: key epochs (key material only wrapped under the KMC's KEK) ----

public sealed record GroupEpochIssuedEvent(
    string GroupId,
    long Epoch,
    DeliveryMode Mode,
    SecurityLevel RequiredSecurityLevel,
    Octets KeyUnderKek,
    Octets KeyCheck,
    EpochAnnouncement Announcement,
    IReadOnlyList<KeyDeliveryTarget> Targets,
    long IssuedAtMs,
    LkhEpochRecord? Lkh = null) : ICpnsEvent;

public sealed record GroupKeysRevokedEvent(string GroupId, long FinalEpoch) : ICpnsEvent;

public sealed record CskmfSnapshot(
    IReadOnlyList<GroupEpochIssuedEvent> LiveEpochs,
    IReadOnlyList<GroupKeysRevokedEvent> Revoked,
    IReadOnlyList<LkhTreeSnapshot>? Trees = null) : ICpnsEvent;

// ---- The logical key hierarchy of a large push group (key material only sealed under the KEK) ----

/// <summary>A PN GW that entered a group's tree: the agreement key its leaf key comes from, and that leaf key.</summary>
public sealed record LkhLeafRecord(string MemberId, Octets AgreementKey, Octets LeafKeyUnderKek) : ICpnsMessage;

public sealed record LkhNodeKeyRecord(int Node, Octets KeyUnderKek) : ICpnsMessage;

/// <summary>
/// What one epoch did to its group's tree: rebuilt it (<paramref name="Joined"/> at leaves n … 2n−1, in order), or
/// took <paramref name="Left"/> out and put <paramref name="Joined"/> in, one step each (<paramref name="Steps"/>, the
/// public rekey messages). <paramref name="NodeKeys"/> are the internal nodes' keys it made, as they ended up;
/// <paramref name="KeyUnderRoot"/> is the epoch's group key wrapped under the new root.
/// </summary>
public sealed record LkhEpochRecord(
    long BaseTreeEpoch,
    long TreeEpoch,
    bool Rebuilt,
    IReadOnlyList<string> Left,
    IReadOnlyList<LkhLeafRecord> Joined,
    IReadOnlyList<LkhNodeKeyRecord> NodeKeys,
    IReadOnlyList<LkhRekey> Steps,
    Octets KeyUnderRoot) : ICpnsMessage;

public sealed record LkhLeafSnapshot(string MemberId, int Position, Octets AgreementKey, Octets LeafKeyUnderKek) : ICpnsMessage;

public sealed record LkhTreeSnapshot(string GroupId, long TreeEpoch, IReadOnlyList<LkhLeafSnapshot> Leaves,
    IReadOnlyList<LkhNodeKeyRecord> Nodes) : ICpnsMessage;

// ---- Metadata Directory (central, or a PN GW's part of a distributed one) ----

public sealed record ServiceStoredEvent(ServiceDescription Description, long Version, long ExpiresAtMs) : ICpnsEvent;

public sealed record ServiceRemovedEvent(string ServiceId, bool Expired) : ICpnsEvent;

public sealed record DirectorySnapshot(IReadOnlyList<ServiceStoredEvent> Services) : ICpnsEvent;

// ---- Usage statistics and charging ----

/// <summary>A usage report recorded: <paramref name="Index"/> numbers the recorded reports (charging follows it).</summary>
public sealed record UsageRecordedEvent(long Index, string Source, long Sequence, IReadOnlyList<UsageRecord> Records) : ICpnsEvent
{
    /// <summary>The reporting PN GW's signed envelope the records came in (null for the server's own records).</summary>
    public SignedEnvelope? Proof { get; init; }
}

public sealed record UsageSnapshot(IReadOnlyList<UsageRecordedEvent> Reports) : ICpnsEvent;

/// <summary>The charging data records produced from usage report <paramref name="UsageIndex"/>.</summary>
public sealed record ChargesRecordedEvent(long UsageIndex, IReadOnlyList<ChargingRecord> Records) : ICpnsEvent;

public sealed record ChargingSnapshot(long LastUsageIndex, IReadOnlyList<ChargingRecord> Records) : ICpnsEvent;

// ---- A Group Key Manager (distributed topology): its group's epochs, key material under the KEK ----

public sealed record GkmEpochCreatedEvent(string GroupId, long Epoch, KeyParameters Parameters, Octets KeyUnderKek, Octets KeyCheck)
    : ICpnsEvent;

public sealed record GkmRevokedEvent(string GroupId, long FinalEpoch) : ICpnsEvent;
