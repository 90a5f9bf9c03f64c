using Akka.Actor;

namespace Cpns.Actors.Protocol;

// ---- Discovery inside a PN (CPNS-1) ----

/// <summary>A PNE looks for the PN GWs within reach (a scan of the PN: every PN GW it can reach is asked).</summary>
public sealed record DiscoverGateways(string DeviceId) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// A PN GW answers discovery: who it is, whether it is a PN GW only or also a PNE (BOTH), whether it takes in a new
/// PNE (it is registered itself) and one coming from another PN GW (its bridge policy), how many PNEs it serves, and
/// the security it holds its PN to (its declared level, never above its credential's ceiling), and whether it is too busy
/// to take a PNE in right now (then after how long to scan again; a forged "busy" delays a PNE by at most
/// <c>Backpressure.MaxRetryAfterMs</c>, no more than a dropped answer would). A PNE chooses among
/// the answers (<c>Pne.GatewayChoice</c>); the advertisement is a hint, and the challenge–response that follows is what
/// authenticates the PN GW.
/// </summary>
public sealed record GatewayAdvertisement(string GatewayId, EntityKind Mode, IActorRef Gateway, bool AcceptsNewPnes,
    int Load = 0, SecurityLevel PnSecurity = SecurityLevel.None, bool AcceptsMovingPnes = false, int RetryAfterMs = 0)
    : ICpnsMessage, IWithGatewayId
{
    /// <summary>A PN GW too busy to take a PNE in now says after how long to scan again (0: it takes PNEs in).</summary>
    public bool Busy => RetryAfterMs > 0;
}

// ---- Leases ----

public sealed record LeaseRefresh(string DeviceId, int LifetimeSeconds) : ICpnsMessage, IWithDeviceId;

/// <summary>A PNE renews its registration lease at half-life (CPNS-1); it may ask for another lifetime.</summary>
public sealed record RefreshLease(string DeviceId, int LifetimeSeconds) : ICpnsMessage, IWithDeviceId;

/// <summary>A PN GW renews its own lease and its PNEs' as one batch (CPNS-2/3/4).</summary>
public sealed record RefreshRegistrations(string GatewayId, IReadOnlyList<LeaseRefresh> Refreshes) : ICpnsMessage, IWithGatewayId;

public sealed record RefreshResult(string DeviceId, bool Renewed, int LifetimeSeconds, long ExpiresAtMs) : ICpnsMessage, IWithDeviceId;

public sealed record RegistrationsRefreshed(string GatewayId, IReadOnlyList<RefreshResult> Results) : ICpnsMessage, IWithGatewayId;

/// <summary>The PN GW tells a PNE its lease was renewed (or that it is not registered and must register again).</summary>
public sealed record LeaseRenewed(string DeviceId, bool Renewed, int LifetimeSeconds) : ICpnsMessage, IWithDeviceId;

public enum DeregistrationReason
{
    Deregistered,
    Expired,
    Revoked,
    Moved,
}

/// <summary>An entity leaves on purpose (a PNE through its PN GW, a PN GW for itself and its PN).</summary>
public sealed record Deregister(string DeviceId) : ICpnsMessage, IWithDeviceId;

/// <summary>Tells a PNE (the device itself) to deregister: it sends its PN GW a <see cref="Deregister"/>.</summary>
public sealed record DeregisterDevice(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record DeregisterEntities(string GatewayId, IReadOnlyList<string> DeviceIds) : ICpnsMessage, IWithGatewayId;

/// <summary>The server removed these registrations (answer to a deregistration, or a lease that ran out).</summary>
public sealed record RegistrationsEnded(IReadOnlyList<string> DeviceIds, DeregistrationReason Reason) : ICpnsMessage;

/// <summary>A PN GW tells a PNE its registration ended.</summary>
public sealed record RegistrationEnded(string DeviceId, DeregistrationReason Reason) : ICpnsMessage, IWithDeviceId;

/// <summary>Published on the event stream when the registry removes registrations.</summary>
public sealed record EntitiesDeregistered(IReadOnlyList<string> DeviceIds, DeregistrationReason Reason) : ICpnsMessage;

/// <summary>Published on the event stream for each batch of PNE registrations the registry made durable.</summary>
public sealed record PneBatchRegistered(string GatewayId, int Count, long AtMs) : ICpnsMessage, IWithGatewayId;

/// <summary>Asks the registry for one entity's lease.</summary>
public sealed record GetLease(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record Lease(string DeviceId, bool Registered, string? RegistrationId, int LifetimeSeconds, long ExpiresAtMs)
    : ICpnsMessage, IWithDeviceId;

// ---- Connection management: heartbeats and reachability ----

/// <summary>
/// A keep-alive on an authenticated link (PNE → PN GW, PN GW → server), with the hash of the sender's current
/// capability document so a change is noticed without sending the document.
/// </summary>
public sealed record Heartbeat(string DeviceId, Octets CapabilityHash) : ICpnsMessage, IWithDeviceId;

/// <summary>The server's answer to a PN GW's heartbeat; a new boot id means the server restarted.</summary>
public sealed record HeartbeatAck(string ServerId, string BootId) : ICpnsMessage;

/// <summary>A PNE announces it sleeps: its PN GW holds what is meant for it until it is heard from again.</summary>
public sealed record GoingToSleep(string DeviceId) : ICpnsMessage, IWithDeviceId;

/// <summary>Inside a PN GW: connections tells the functions whether a PNE can be reached now.</summary>
public sealed record PneReachability(string DeviceId, bool Reachable, bool Sleeping) : INodeLocal, IWithDeviceId;

/// <summary>Inside a PN GW: a function heard from a PNE it had as unreachable.</summary>
public sealed record UplinkSeen(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record GetReachability(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record Reachability(string DeviceId, bool Reachable, bool Sleeping, long LastSeenMs) : ICpnsMessage, IWithDeviceId;

/// <summary>Asks a PN GW function how its downlink queues for unreachable PNEs stand.</summary>
public sealed record GetDownlinkStats : INodeLocal
{
    public static readonly GetDownlinkStats Instance = new();
}

public sealed record DownlinkStats(string Function, int Queued, long Dropped, long Delivered) : ICpnsMessage;

/// <summary>
/// Tells a PNE (the device itself) to go to sleep: it stops its heartbeats, and says so to its PN GW unless
/// <paramref name="Announce"/> is off (a device that just goes silent).
/// </summary>
public sealed record Sleep(string DeviceId, bool Announce = true) : INodeLocal, IWithDeviceId;

/// <summary>Tells a sleeping PNE to wake: its next heartbeat makes it reachable again.</summary>
public sealed record Wake(string DeviceId) : INodeLocal, IWithDeviceId;

// ---- Devices without CPNS features, represented by their PN GW (seed §5.3.1.7) ----

// The command that adopts one is node-local and carries the device's identity: Local.AdoptLegacyDevice.


/// <summary>The PN GW runs the device's PNE at <paramref name="Representative"/>: the device's applications ask it (node-local API).</summary>
public sealed record LegacyDeviceAdopted(string DeviceId, IActorRef Representative) : INodeLocal, IWithDeviceId;

public sealed record LegacyDeviceRefused(string DeviceId, string Reason) : INodeLocal, IWithDeviceId;

/// <summary>Group content the device's representative opened, passed on over the PN's own link.</summary>
public sealed record LegacyContent(string DeliveryId, string ServiceId, string GroupId, string SenderId, Octets Payload) : INodeLocal;

public sealed record GetLegacyDevices : INodeLocal
{
    public static readonly GetLegacyDevices Instance = new();
}

public sealed record LegacyDevices(string GatewayId, IReadOnlyList<string> DeviceIds) : INodeLocal;

// ---- PNE moves between PNs (bridge) ----

/// <summary>Tells a PNE (the device) to move into the PN of another PN GW.</summary>
public sealed record MoveToGateway(string DeviceId, IActorRef TargetGateway) : INodeLocal, IWithDeviceId;

/// <summary>A PNE asks a PN GW to take it into its PN; its credential tells the PN GW who it is.</summary>
public sealed record BridgeRequest(string DeviceId, Credential Credential, string FromGatewayId) : ICpnsMessage, IWithDeviceId;

/// <summary>The target PN GW's answer (with its credential, so the PNE can check who answers).</summary>
public sealed record BridgeAnswer(string DeviceId, string GatewayId, Credential GatewayCredential, bool Accepted, string Reason)
    : ICpnsMessage, IWithDeviceId, IWithGatewayId;

/// <summary>Sets a PN GW's policies: whether it takes in PNEs from other PNs, and whether it hands its PN over.</summary>
public sealed record SetGatewayPolicy(bool AcceptBridges, bool AgreeToHandover) : INodeLocal;

/// <summary>Published by the registry when a PNE registered through another PN GW than before.</summary>
public sealed record PneMoved(string DeviceId, string FromGatewayId, string ToGatewayId) : INodeLocal, IWithDeviceId;

// ---- PN GW change (handover) ----

/// <summary>Tells a PN GW to take over the PN of another one.</summary>
public sealed record TakeOverPn(string OldGatewayId, IActorRef OldGateway) : INodeLocal;

/// <summary>A PN GW about to take over another's PN asks the server for the nonce its PNEs' consents must sign.</summary>
public sealed record MoveNonceRequest(string GatewayId) : ICpnsMessage, IWithGatewayId;

/// <summary>The server's nonce for one takeover by <paramref name="GatewayId"/>, valid for a bounded time.</summary>
public sealed record MoveNonceIssued(string GatewayId, Octets Nonce) : ICpnsMessage, IWithGatewayId;

/// <summary>
/// A PN GW asks another for its PN; <paramref name="MoveNonce"/>, issued by the server, is what each PNE's consent to the
/// move must sign.
/// </summary>
public sealed record HandoverRequest(string NewGatewayId, Credential NewGatewayCredential, GatewayEndpoints NewGateway, Octets MoveNonce)
    : ICpnsMessage;

/// <summary>The old PN GW's answer: its PN table when it agrees.</summary>
public sealed record HandoverAnswer(string OldGatewayId, Credential OldGatewayCredential, bool Accepted, string Reason,
    IReadOnlyList<PneRegistration> Pnes) : ICpnsMessage;

/// <summary>The old PN GW tells each of its PNEs where its new home is.</summary>
public sealed record HomeChanged(string DeviceId, string NewGatewayId, Credential NewGatewayCredential, GatewayEndpoints NewGateway,
    Octets MoveNonce) : ICpnsMessage, IWithDeviceId;

/// <summary>
/// A PNE's own consent to being moved from one PN GW to another, told of by the old one: its signature over both PN GW
/// ids, the new PN GW's nonce and the time, with its credential so the new PN GW can check it before it knows the PNE.
/// The server takes a handed-over PNE only with this (a credential alone is public, so it proves nothing).
/// </summary>
public sealed record MoveConsent(
    string DeviceId,
    string FromGatewayId,
    string ToGatewayId,
    Octets Nonce,
    long TimestampMs,
    Credential Credential,
    Octets Signature) : ICpnsMessage, IWithDeviceId
{
    public static Transcript SignedPart(string deviceId, string fromGatewayId, string toGatewayId, Octets nonce, long timestampMs) =>
        new Transcript("cpns/move/v1").Add(deviceId).Add(fromGatewayId).Add(toGatewayId).Add(nonce).Add(timestampMs);
}

/// <summary>The answer to <see cref="TakeOverPn"/>.</summary>
public sealed record HandoverResult(string OldGatewayId, string NewGatewayId, bool Completed, int Pnes, string Reason) : INodeLocal;
