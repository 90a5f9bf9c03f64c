namespace Cpns.Actors.Protocol;

/// <summary>The device-management operations on a device's management tree (seed §5.1.2, after OMA DM).</summary>
public enum DmOperation
{
    Get,
    Replace,
    Exec,
}

public enum DmStatus
{
    Ok,
    NotFound,
    NotAllowed,
    BadValue,
    Unreachable,
    TimedOut,
}

/// <summary>An operator's management command for a device, to the server's <c>dm</c>.</summary>
public sealed record DmCommand(string DeviceId, DmOperation Operation, string Path, string? Value = null) : INodeLocal, IWithDeviceId;

/// <summary>The server → PN GW → device leg of a management command.</summary>
public sealed record DmRequest(long RequestId, string DeviceId, DmOperation Operation, string Path, string? Value)
    : ICpnsMessage, IWithDeviceId;

public sealed record DmResponse(long RequestId, string DeviceId, DmStatus Status, string? Value, string Detail)
    : ICpnsMessage, IWithDeviceId;

/// <summary>
/// Device-initiated management (seed §5.1.2): the DM client on a device raises an alert of its own — a generic alert in
/// OMA DM terms, e.g. a firmware update it asks for or a fault it reports — signed by the device (a PNE's through its
/// PN GW) to the server's <c>dm</c>. Its applications ask the PNE with this in a <c>LocalRequest</c>.
/// </summary>
/// <paramref name="RequestId"/> is the device's own, echoed in the answer.
public sealed record DmAlert(string DeviceId, string AlertType, string Path, string Data, long RequestId = 0) : ICpnsMessage, IWithDeviceId;

/// <summary>The server's answer to a <see cref="DmAlert"/>: kept under <paramref name="AlertId"/>, or refused and why.</summary>
public sealed record DmAlertAnswer(string DeviceId, long AlertId, bool Accepted, string Detail, long RequestId = 0)
    : ICpnsMessage, IWithDeviceId;

/// <summary>An operator asks the server's <c>dm</c> for the alerts a device raised (the latest first).</summary>
public sealed record GetDmAlerts(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record DmAlertRecord(long AlertId, long AtMs, string AlertType, string Path, string Data);

public sealed record DmAlerts(string DeviceId, IReadOnlyList<DmAlertRecord> Alerts) : INodeLocal, IWithDeviceId;

/// <summary>The answer to a <see cref="DmCommand"/>.</summary>
public sealed record DmResult(string DeviceId, DmOperation Operation, string Path, DmStatus Status, string? Value, string Detail)
    : ICpnsMessage, IWithDeviceId;
