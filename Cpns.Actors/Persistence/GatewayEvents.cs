using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Persistence;

// ---- A PN GW's own durable state: its credential and its PN table ----

public sealed record GatewayCredentialStored(Credential Credential) : ICpnsEvent;

/// <summary>PNEs that registered through this PN GW (with their credentials), one event per batch the server accepted.</summary>
public sealed record PnTableJoined(IReadOnlyList<PneRegistration> Pnes) : ICpnsEvent;

public sealed record PnTableLeft(IReadOnlyList<string> DeviceIds) : ICpnsEvent;

public sealed record PnTableSnapshot(Credential? Credential, IReadOnlyList<PneRegistration> Pnes) : ICpnsEvent;
