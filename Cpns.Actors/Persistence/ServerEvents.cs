using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Persistence;

// ---- Registry ----

public sealed record GatewayRecord(
    string GatewayId,
    EntityKind Kind,
    PublicKeys Keys,
    GatewayEndpoints Endpoints,
    string RegistrationId,
    int LifetimeSeconds,
    long RegisteredAtMs) : ICpnsMessage, IWithGatewayId;

public sealed record PneRecord(
    string DeviceId,
    string GatewayId,
    PublicKeys Keys,
    PneEndpoints Endpoints,
    string RegistrationId,
    int LifetimeSeconds,
    long RegisteredAtMs) : ICpnsMessage, IWithDeviceId;

public sealed record GatewayRegisteredEvent(GatewayRecord Gateway, long RegistrationNumber) : ICpnsEvent;

/// <summary>One event for a whole batch of PNE registrations from one PN GW: one journal round trip.</summary>
public sealed record PnesRegisteredEvent(string GatewayId, IReadOnlyList<PneRecord> Pnes, long LastRegistrationNumber)
    : ICpnsEvent;

public sealed record RegistrySnapshot(
    IReadOnlyList<GatewayRecord> Gateways,
    IReadOnlyList<PneRecord> Pnes,
    long LastRegistrationNumber) : ICpnsEvent;

// ---- Server SMF: service groups ----

public sealed record GroupCreatedEvent(string GroupId, string Owner, DeliveryMode Mode, long Epoch, IReadOnlyList<string> Members)
    : ICpnsEvent;

public sealed record MemberAddedEvent(string GroupId, string MemberId, long Epoch) : ICpnsEvent;

public sealed record MemberRemovedEvent(string GroupId, string MemberId, long Epoch) : ICpnsEvent;

public sealed record GroupDeletedEvent(string GroupId, long FinalEpoch) : ICpnsEvent;

public sealed record GroupSnapshotEntry(string GroupId, string Owner, DeliveryMode Mode, long Epoch, IReadOnlyList<string> Members)
    : ICpnsMessage;

public sealed record DeletedGroupEntry(string GroupId, long FinalEpoch) : ICpnsMessage;

public sealed record SmfSnapshot(IReadOnlyList<GroupSnapshotEntry> Groups, IReadOnlyList<DeletedGroupEntry> DeletedGroups)
    : ICpnsEvent;

// ---- Server CSKMF: key epochs (key material only wrapped under the KMC's KEK) ----

public sealed record GroupEpochIssuedEvent(
    string GroupId,
    long Epoch,
    DeliveryMode Mode,
    Octets KeyUnderKek,
    Octets KeyCheck,
    IReadOnlyList<KeyDeliveryTarget> Targets,
    long IssuedAtMs) : ICpnsEvent;

public sealed record GroupKeysRevokedEvent(string GroupId, long FinalEpoch) : ICpnsEvent;

public sealed record CskmfSnapshot(IReadOnlyList<GroupEpochIssuedEvent> LiveEpochs, IReadOnlyList<GroupKeysRevokedEvent> Revoked)
    : ICpnsEvent;
