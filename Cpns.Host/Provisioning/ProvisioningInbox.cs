using System.Text.Json;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Host.Provisioning;

/// <summary>
/// The server node's inbox for provisioning files: `cpns provision` run with the server node's data folder (on its
/// host, as the operator) drops one owner-only file of device ids, kinds and token keys into <c>provisioning/</c>; the
/// node hands each file to its registry, which journals it, and removes the file. A file it cannot read is renamed
/// <c>.refused</c> with the reason in the node's output.
/// </summary>
public sealed class ProvisioningInbox : IAsyncDisposable
{
    public const string FolderName = "provisioning";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly string _folder;
    private readonly IActorRef _registry;
    private readonly TimeSpan _askTimeout;
    private readonly Action<string> _say;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public ProvisioningInbox(string dataFolder, IActorRef registry, TimeSpan askTimeout, Action<string> say)
    {
        _folder = Path.Combine(dataFolder, FolderName);
        _registry = registry;
        _askTimeout = askTimeout;
        _say = say;
        _loop = Task.Run(RunAsync);
    }

    public sealed record Entry(string DeviceId, EntityKind Kind, string EnrolmentKey, long ExpiresAtMs, SecurityLevel? PnSecurityCeiling = null);

    /// <summary>Writes a provisioning file for the server node whose data folder is <paramref name="dataFolder"/>.</summary>
    public static string Drop(string dataFolder, IEnumerable<DeviceProvision> devices)
    {
        var path = Path.Combine(dataFolder, FolderName, $"{DateTime.UtcNow:yyyyMMddHHmmssfff}-{Guid.NewGuid():N}.json");
        SecretFiles.Write(path, JsonSerializer.SerializeToUtf8Bytes(
            devices.Select(d => new Entry(d.DeviceId, d.Kind, Convert.ToBase64String(d.EnrolmentKey.Span), d.ExpiresAtMs,
                d.PnSecurityCeiling)).ToList(), Json));
        return path;
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                foreach (var file in Directory.Exists(_folder) ? Directory.GetFiles(_folder, "*.json").Order(StringComparer.Ordinal).ToArray() : [])
                    await TakeAsync(file);
                await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task TakeAsync(string file)
    {
        List<DeviceProvision> devices;
        try
        {
            SecretFiles.CheckOwnerOnly(file);
            devices = (JsonSerializer.Deserialize<List<Entry>>(await File.ReadAllBytesAsync(file), Json) ?? [])
                .Select(e => new DeviceProvision(e.DeviceId, e.Kind, Octets.Own(Convert.FromBase64String(e.EnrolmentKey)), e.ExpiresAtMs,
                    e.PnSecurityCeiling))
                .ToList();
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidDataException or IOException)
        {
            _say($"provisioning file {file} refused: {e.Message}");
            File.Move(file, file + ".refused", overwrite: true);
            return;
        }

        try
        {
            var answer = await _registry.Ask<DevicesProvisioned>(new ProvisionDevices(devices), _askTimeout, _stop.Token);
            File.Delete(file);
            _say($"provisioned {answer.DeviceIds.Count} devices for enrolment from {Path.GetFileName(file)}" +
                 (answer.Refused.Count == 0 ? "" : $"; refused: {string.Join("; ", answer.Refused.Select(r => $"{r.DeviceId} ({r.Detail})"))}"));
        }
        catch (AskTimeoutException)
        {
            // the registry is busy or recovering: the file stays and is taken on the next round
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
