using Cpns.Actors.Protocol;

namespace Cpns.Host.Api;

// The bodies the API takes and the views it answers with; ids and enums are the enabler's own.

/// <summary>A service description as an ACE publishes it (the offerer is the ACE itself).</summary>
public sealed record ServiceBody(
    string Name,
    string Type,
    IReadOnlyList<string> Keywords,
    IReadOnlyDictionary<string, string>? Attributes = null,
    IReadOnlyList<string>? RequiredCodecs = null,
    int MinBitrateKbps = 0,
    Privilege RequiredPrivilege = Privilege.None,
    string? GroupId = null,
    int LifetimeSeconds = 0);

public sealed record ServiceView(ServiceDescription Description, long Version, long ExpiresAtMs);

/// <summary>Content for a service group (or one member of it): UTF-8 <c>Text</c> or base64 <c>Content</c>, one of them.</summary>
public sealed record DeliveryBody(
    string DeliveryId,
    string ServiceId,
    string? GroupId = null,
    string? TargetDeviceId = null,
    string? Text = null,
    string? Content = null);

public sealed record DeliveryView(
    string DeliveryId,
    string ServiceId,
    string GroupId,
    long Epoch,
    int CiphertextBytes,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Gateways,
    IReadOnlyList<string> Unplaced,
    long AcceptedAtMs);

public sealed record UsageView(IReadOnlyList<string> Services, long Sessions, long BytesUp, long BytesDown, long DurationMs,
    IReadOnlyList<UsageRecord> Records);

public sealed record NewGroupBody(
    string GroupId,
    DeliveryMode Mode,
    IReadOnlyList<string> Members,
    SecurityLevel RequiredSecurityLevel = SecurityLevel.None,
    JoinPolicy JoinPolicy = JoinPolicy.Closed);

public sealed record MemberBody(string MemberId, Privilege Privilege = Privilege.Operate);

public sealed record GrantBody(Privilege Privilege);

public sealed record RevokeBody(string Reason);

public sealed record DmBody(DmOperation Operation, string Path, string? Value = null);

/// <summary>A group's key state as the operator may see it: the epoch and the LKH tree's size, never a key.</summary>
public sealed record GroupKeysView(string GroupId, DeliveryMode Mode, long Epoch, int LkhMembers, long LkhTreeEpoch);

/// <summary>A device the operator allows to enrol once: a PN GW (or BOTH device) or a PNE.</summary>
/// <param name="PnSecurityCeiling">A PN GW's: the highest PN security level its credential lets it claim (none: any).</param>
public sealed record ProvisionBody(string DeviceId, EntityKind Kind, int ValidDays = 7, SecurityLevel? PnSecurityCeiling = null);

/// <summary>The device's one-time enrolment token, shown only in this answer; the server keeps only its key.</summary>
public sealed record ProvisionedView(string DeviceId, EntityKind Kind, string Token, long ExpiresAtMs);
