using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Cluster;

/// <summary>
/// The distributed CPNS Server as real <c>cpns</c> processes on loopback: one server node and three gateway nodes
/// on a shared PostgreSQL journal form a cluster and deliver group keys; a gateway node hosting a Group Key Manager
/// is killed (SIGKILL); the group's keys are delivered again from another node; the rest stop cleanly on SIGTERM.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClusterProcessTests(ITestOutputHelper output, PostgresServer postgres) : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly TempFolder _folder = new("cpns-cluster-processes");
    private readonly List<CpnsProcess> _processes = new();

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            process.Kill();
            process.Dispose();
        }

        _folder.Dispose();
    }


    private CpnsProcess Start(params string[] arguments)
    {
        var process = CpnsProcess.Start(arguments);
        _processes.Add(process);
        return process;
    }

    private async Task<ClusterStatus?> StatusAsync(string node)
    {
        var (exit, stdout, _) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(60), "status", "--node", node, "--json", "--timeout", "10",
            "--data", _folder.Path);
        return exit == 0 ? JsonSerializer.Deserialize<ClusterStatus>(stdout, Json) : null;
    }

    private async Task<ClusterStatus> AwaitStatusAsync(string node, Func<ClusterStatus, bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        ClusterStatus? last = null;
        while (clock.Elapsed < timeout)
        {
            last = await StatusAsync(node) ?? last;
            if (last is not null && condition(last))
                return last; // each ask is a `cpns status` process of its own, about a second: no pause needed between them
        }

        throw new TimeoutException($"{what} did not happen within {timeout}; last status: {JsonSerializer.Serialize(last, Json)}\n" +
                                   string.Join("\n---\n", _processes.Select(p => p.Stdout + p.Stderr).Select(t => t[Math.Max(0, t.Length - 3000)..])));
    }

    [Fact]
    public async Task Real_processes_form_a_cluster_deliver_keys_survive_a_killed_gateway_node_and_stop_cleanly()
    {
        var connection = postgres.NewDatabase();
        var serverPort = FreePorts.Next();
        var seed = $"akka.ssl.tcp://cpns@127.0.0.1:{serverPort}";
        var storage = new[] { "--db", "postgres", "--connection", connection, "--data", _folder.Path };
        var server = Start(["server", "--port", serverPort.ToString(), "--demo-groups", "2", "--demo-members", "4", "--demo-interval", "1",
            .. storage]);
        await server.WaitForOutputAsync("is up", TimeSpan.FromSeconds(90));

        var gateways = new Dictionary<string, (CpnsProcess Process, string Address)>();
        foreach (var name in new[] { "a", "b", "c" })
        {
            // The operator provisions each gateway node's devices; the server node takes the keys from its inbox.
            var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "provision", "--data", _folder.Path, "--name", name,
                "--pnes", "3");
            Assert.True(exit == 0, stdout + stderr);
        }

        await server.WaitForOutputAsync("provisioned 4 devices", TimeSpan.FromSeconds(30));
        foreach (var name in new[] { "a", "b", "c" })
        {
            var port = FreePorts.Next();
            gateways[name] = (Start(["gateway", "--seed", seed, "--port", port.ToString(), "--name", name, "--pnes", "3", .. storage]),
                $"akka.ssl.tcp://cpns@127.0.0.1:{port}");
        }

        foreach (var (process, _) in gateways.Values)
            await process.WaitForOutputAsync("is up", TimeSpan.FromSeconds(90));

        // Formed: four members up, both groups rekeyed at least once, every PN GW of a group acknowledged its epoch.
        var formed = await AwaitStatusAsync(seed, s =>
                s.Members.Count(m => m.Status == "Up") == 4 && s.Groups.Count == 2 &&
                s.Groups.All(g => g.Epoch >= 2 && g.Pending.Count == 0 && g.ManagerNode is not null),
            TimeSpan.FromSeconds(120), "cluster formation and key delivery");
        Assert.All(formed.Managers, m => Assert.Contains(m.Node, gateways.Values.Select(g => g.Address)));

        // Kill the gateway node that manages demo-1's keys.
        var demo1 = formed.Groups.Single(g => g.GroupId == "demo-1");
        var victim = gateways.Single(g => g.Value.Address == demo1.ManagerNode).Key;
        var epochAtKill = (await StatusAsync(seed))!.Groups.Single(g => g.GroupId == "demo-1").Epoch;
        var clock = Stopwatch.StartNew();
        var killedAt = DateTime.UtcNow;
        gateways[victim].Process.Kill();

        // Survived: demo-1 rekeys again, managed elsewhere, acknowledged by every PN GW still alive.
        var after = await AwaitStatusAsync(seed, s =>
                s.Members.All(m => m.Address != gateways[victim].Address) &&
                s.Groups.Single(g => g.GroupId == "demo-1") is var g && g.Epoch > epochAtKill + 1 &&
                g.ManagerNode is not null && g.ManagerNode != gateways[victim].Address &&
                g.Pending.All(p => p.StartsWith(victim + "-", StringComparison.Ordinal)) &&
                g.Acknowledged.Any(a => !a.StartsWith(victim + "-", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(120), "key delivery after the kill");
        output.WriteLine($"kill of gateway node {victim} (manager of demo-1 at epoch {epochAtKill}) → demo-1 at epoch " +
                         $"{after.Groups.Single(g => g.GroupId == "demo-1").Epoch} on {after.Groups.Single(g => g.GroupId == "demo-1").ManagerNode}, " +
                         $"delivered, {clock.Elapsed.TotalSeconds:F1} s after the kill");
        var (firstAt, firstLine) = FirstChangeAfter(server.Stdout, "demo-1", killedAt);
        Assert.NotNull(firstLine);
        output.WriteLine($"kill → first demo-1 rekey: {(firstAt - killedAt.TimeOfDay).TotalSeconds:F1} s ({firstLine})");

        // Clean stop: every remaining process leaves the cluster and exits 0.
        foreach (var (name, (process, _)) in gateways.Where(g => g.Key != victim))
        {
            process.Terminate();
            Assert.Equal(0, await process.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("leaving the cluster", process.Stdout);
        }

        server.Terminate();
        Assert.Equal(0, await server.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    /// <summary>The server's first accepted change of the group after <paramref name="after"/> (its lines start with the UTC time).</summary>
    private static (TimeSpan At, string? Line) FirstChangeAfter(string serverOutput, string groupId, DateTime after)
    {
        foreach (var line in serverOutput.Split('\n'))
        {
            var match = System.Text.RegularExpressions.Regex.Match(line, $@"^(\d\d:\d\d:\d\d\.\d{{3}}) group {groupId}: .*; epoch \d+,");
            if (match.Success && TimeSpan.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > after.TimeOfDay)
                return (TimeSpan.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), line.Trim());
        }

        return (TimeSpan.Zero, null);
    }
}
