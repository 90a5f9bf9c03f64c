namespace Cpns.Actors.Protocol;

/// <summary>How well a PN technology protects what crosses it (seed §5.3.1.9: the PN GW reports it).</summary>
public enum SecurityLevel
{
    None = 0,
    Low = 1,
    Medium = 2,
    High = 3,
}

public static class PnSecurity
{
    /// <summary>The level a PN is held to: what its PN GW declares, never above what the PN GW's credential allows.</summary>
    public static SecurityLevel Held(SecurityLevel declared, SecurityLevel? ceiling) =>
        ceiling is { } limit && limit < declared ? limit : declared;
}

/// <summary>A personal-network technology a device speaks, and the security it provides there.</summary>
public sealed record PnTechnology(string Name, SecurityLevel Security) : ICpnsMessage;

/// <summary>
/// A device capability document (seed §5.3.1.3): what the device is, what media it handles, its resources,
/// the PN technologies it uses (with their security level) and the CPNS functions it supports.
/// </summary>
public sealed record DeviceCapabilities(
    string DeviceKind,
    IReadOnlyList<string> Codecs,
    int MaxBitrateKbps,
    long StorageBytes,
    int BatteryPercent,
    IReadOnlyList<PnTechnology> PnTechnologies,
    IReadOnlyList<string> Functions) : ICpnsMessage
{
    /// <summary>The security of the PN behind this device: its weakest PN technology (None if it has none).</summary>
    public SecurityLevel PnSecurityLevel =>
        PnTechnologies.Count == 0 ? SecurityLevel.None : PnTechnologies.Min(t => t.Security);

    public static DeviceCapabilities Gateway(SecurityLevel pnSecurity = SecurityLevel.High) => new(
        "phone", ["aac", "opus", "h264"], 20_000, 64L << 30, 80,
        [new PnTechnology("wifi-wpa3", pnSecurity), new PnTechnology("bluetooth-le", pnSecurity)],
        ["registration", "capabilities", "status", "service-management", "security", "delivery"]);

    /// <summary>A device with no CPNS stack, represented by its PN GW: reached over <paramref name="link"/>, it runs none of the functions itself.</summary>
    public static DeviceCapabilities Legacy(string deviceKind, PnTechnology link) => new(
        deviceKind, [], 0, 0, 100, [link], [RepresentedByGateway]);

    /// <summary>The function a legacy device's capability document names instead of CPNS functions of its own.</summary>
    public const string RepresentedByGateway = "represented-by-pn-gw";

    /// <summary>A typical PNE's document; one shared instance (records do not change), not one per device.</summary>
    public static DeviceCapabilities Pne() => TypicalPne;

    private static readonly DeviceCapabilities TypicalPne = new(
        "media-player", ["aac", "opus"], 2_000, 8L << 30, 60,
        [new PnTechnology("bluetooth-le", SecurityLevel.High)],
        ["registration", "capabilities", "service-management", "security"]);
}

/// <summary>
/// A PN GW's own capability document changed — its PN technologies, so perhaps its PN's security level — signed by the
/// PN GW to the registry, which keeps it and holds the PN to the level it gives from then on.
/// </summary>
public sealed record GatewayCapabilitiesChanged(string GatewayId, DeviceCapabilities Capabilities) : ICpnsMessage, IWithGatewayId;

/// <summary>The registry's answer: the PN security level the server now holds the PN GW's PN to.</summary>
public sealed record GatewayCapabilitiesAccepted(string GatewayId, SecurityLevel PnSecurityLevel) : ICpnsMessage, IWithGatewayId;

/// <summary>An operator (or a server function) asks the server for a device's capability document.</summary>
public sealed record QueryCapabilities(string DeviceId) : INodeLocal, IWithDeviceId;

/// <summary>The server asks a PN GW for a device's capabilities (it answers from its cache when it can).</summary>
public sealed record CapabilityQuery(long RequestId, string DeviceId) : ICpnsMessage, IWithDeviceId;

/// <summary>A capability document with its content hash; <paramref name="FromCache"/> says a PN GW answered without asking.</summary>
public sealed record CapabilityReport(long RequestId, string DeviceId, Octets Hash, DeviceCapabilities Capabilities, bool FromCache)
    : ICpnsMessage, IWithDeviceId;

public sealed record CapabilityQueryFailed(long RequestId, string DeviceId, string Reason) : ICpnsMessage, IWithDeviceId;

/// <summary>The answer to <see cref="QueryCapabilities"/>.</summary>
public sealed record DeviceCapabilitiesReport(string DeviceId, Octets Hash, DeviceCapabilities Capabilities, bool FromCache)
    : ICpnsMessage, IWithDeviceId;

/// <summary>A PNE's capabilities changed (the device itself is told; its next heartbeat carries the new hash).</summary>
public sealed record UpdateCapabilities(string DeviceId, DeviceCapabilities Capabilities) : INodeLocal, IWithDeviceId;

/// <summary>Inside a PN GW: connections saw this capability hash in a PNE's heartbeat.</summary>
public sealed record CapabilityHashSeen(string DeviceId, Octets Hash) : INodeLocal, IWithDeviceId;

public sealed record GetRelayStats : INodeLocal
{
    public static readonly GetRelayStats Instance = new();
}

public sealed record RelayStats(long CapabilityQueriesRelayed, long CapabilityQueriesFromCache, long ManagementRequestsRelayed)
    : ICpnsMessage;
