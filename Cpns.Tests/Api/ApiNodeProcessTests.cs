using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Cpns.Actors.Security;
using Cpns.Host.Api;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Api;

/// <summary>
/// The API as the README runs it: `cpns api-client add`, `cpns server --http`, `cpns status --api`, all as processes,
/// with the node's own certificate checked against the deployment CA it made.
/// </summary>
public sealed class ApiNodeProcessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cpns-api-node-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task A_server_node_serves_its_API_to_a_client_made_by_api_client_add_and_status_reads_the_cluster_through_it()
    {
        var (exit, key, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "api-client", "add", "--data", _data, "--id", "alice",
            "--role", "operator");
        Assert.True(exit == 0, stderr);
        key = key.Trim();
        Assert.StartsWith("cpns_alice_", key);
        Assert.DoesNotContain(key, await File.ReadAllTextAsync(Path.Combine(_data, "api-clients.json")));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_data, "api-clients.json")));
        (exit, _, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "api-client", "add", "--data", _data, "--id", "alice",
            "--role", "ace");
        Assert.Equal(2, exit);
        Assert.Contains("exists already", stderr);

        var apiPort = FreePorts.Next();
        using var server = CpnsProcess.Start("server", "--port", FreePorts.Next().ToString(), "--data", _data, "--http", $"127.0.0.1:{apiPort}");
        await server.WaitForOutputAsync("HTTP API on", TimeSpan.FromSeconds(60));

        var deployment = DeploymentCertificates.Open(Path.Combine(_data, "tls"));
        using var http = new HttpClient(ApiStatus.TrustingOnly(deployment)) { BaseAddress = new Uri($"https://127.0.0.1:{apiPort}/") };
        await AwaitReadyAsync(http);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("operator/v1/inventory")).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("operator/v1/inventory")).StatusCode);

        (exit, var stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(60), "status", "--api", $"https://127.0.0.1:{apiPort}",
            "--api-key", key, "--data", _data, "--json");
        Assert.True(exit == 0, stdout + stderr);
        var status = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(["server"], status.GetProperty("members")[0].GetProperty("roles").EnumerateArray().Select(r => r.GetString()));

        (exit, _, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(60), "status", "--api", $"https://127.0.0.1:{apiPort}",
            "--api-key", "cpns_alice_" + new string('x', 43), "--data", _data);
        Assert.Equal(2, exit);
        Assert.Contains("401", stderr);
        Assert.DoesNotContain(" at ", stderr);

        server.Terminate();
        Assert.Equal(0, await server.WaitAsync(TimeSpan.FromSeconds(40)));
        Assert.DoesNotContain(" at ", server.Stderr);
    }

    private static async Task AwaitReadyAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var ready = await http.GetAsync("health/ready");
            if (ready.StatusCode == HttpStatusCode.OK)
                return;
            Assert.True(DateTime.UtcNow < deadline, await ready.Content.ReadAsStringAsync());
            await Task.Delay(50); // polling the readiness the test claims, until the deadline
        }
    }
}
