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

/// <summary>The answer to a <see cref="DmCommand"/>.</summary>
public sealed record DmResult(string DeviceId, DmOperation Operation, string Path, DmStatus Status, string? Value, string Detail)
    : ICpnsMessage, IWithDeviceId;
