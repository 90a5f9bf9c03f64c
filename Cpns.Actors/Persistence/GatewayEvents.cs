using System.Text.Json.Serialization;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Persistence;

// ---- A PN GW's own durable state: its credential and its PN table ----

public sealed record GatewayCredentialStoredEvent(Credential Credential) : ICpnsEvent;

/// <summary>PNEs that registered through this PN GW (with their credentials), one event per batch the server accepted.</summary>
public sealed record PnTableJoinedEvent(IReadOnlyList<PneRegistration> Pnes) : ICpnsEvent;

public sealed record PnTableLeftEvent(IReadOnlyList<string> DeviceIds) : ICpnsEvent;

/// <summary>
/// The server revoked an entity's credentials: kept, so a restarted PN GW still refuses them, with the server's signed
/// notice it passes on to its PNEs (journals written before notices existed hold none).
/// </summary>
public sealed record RevocationLearnedEvent(
    string DeviceId,
    IReadOnlyList<string> Serials,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RevocationNotice? Notice = null) : ICpnsEvent;

public sealed record PnTableSnapshot(
    Credential? Credential,
    IReadOnlyList<PneRegistration> Pnes,
    IReadOnlyList<string>? RevokedDevices = null,
    IReadOnlyList<string>? RevokedSerials = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<RevocationNotice>? RevocationNotices = null)
    : ICpnsEvent;
