using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The alerts devices raised themselves, the latest <paramref name="perDevice"/> of each device, in memory (the device
/// raises an alert again if it still needs something after the server restarted). Alerts that do not fit are refused.
/// </summary>
public sealed class DmAlertLog(int perDevice = 32)
{
    public const int MaxAlertType = 128;
    public const int MaxPath = 256;
    public const int MaxData = 1024;

    private readonly Dictionary<string, LinkedList<DmAlertRecord>> _byDevice = new(StringComparer.Ordinal);
    private long _lastId;

    /// <summary>Why an alert is refused, if it is.</summary>
    public static string? Problem(DmAlert alert) =>
        alert.AlertType.Length is 0 or > MaxAlertType ? $"an alert type has 1 to {MaxAlertType} characters"
        : alert.Path.Length > MaxPath || (alert.Path.Length > 0 && !alert.Path.StartsWith("./", StringComparison.Ordinal))
            ? $"a path is empty or a management tree path (./…) of at most {MaxPath} characters"
        : alert.Data.Length > MaxData ? $"alert data has at most {MaxData} characters"
        : null;

    public DmAlertRecord Add(DmAlert alert, long nowMs)
    {
        if (!_byDevice.TryGetValue(alert.DeviceId, out var alerts))
            _byDevice[alert.DeviceId] = alerts = new LinkedList<DmAlertRecord>();
        var record = new DmAlertRecord(++_lastId, nowMs, alert.AlertType, alert.Path, alert.Data);
        alerts.AddFirst(record);
        if (alerts.Count > perDevice)
            alerts.RemoveLast();
        return record;
    }

    public IReadOnlyList<DmAlertRecord> Of(string deviceId) =>
        _byDevice.TryGetValue(deviceId, out var alerts) ? alerts.ToList() : [];

    public void Forget(string deviceId) => _byDevice.Remove(deviceId);
}
