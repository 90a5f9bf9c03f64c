using System.Text.Json;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Host;

/// <summary>The `cpns` executable itself, run as a process the way a user runs it.</summary>
public sealed class SimulateCommandTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cpns-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Simulate_on_the_embedded_SQLite_default_exits_0_and_writes_the_summary_keys()
    {
        Directory.CreateDirectory(_data);
        var json = Path.Combine(_data, "out.json");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(3),
            "simulate", "--data", _data, "--json", json, "--quiet");
        Assert.True(exit == 0, $"exit {exit}\n{stdout}\n{stderr}");

        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = document.RootElement;
        Assert.Equal(
            ["gateways", "pnes", "groups", "changeRate", "members", "membersWithCurrentKey", "keysDeliveredPush", "keysDeliveredPull",
                "epochs", "keyDeliveryP50Ms", "keyDeliveryP99Ms", "wallSeconds", "pushP50Ms", "pushP99Ms", "pushMaxMs", "pullP50Ms",
                "pullP99Ms", "pullMaxMs", "firstKeyPush", "firstKeyPull", "rekeyPush", "rekeyPull", "phaseSeconds", "pneRegistrationsPerSecond", "retries", "busyAnswers", "envelopesRefused",
                "retriesByFunction", "busyAnswersByFunction",
                "bytesPerPne", "crypto", "cryptoUnitCosts", "cryptoFloorSeconds", "wallOverFloor", "bothDevices", "legacyDevices", "sleepingPnes",
                "contentSent", "contentAccepted", "contentDue", "contentOpened"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(20, root.GetProperty("changeRate").GetDouble());
        Assert.Equal(["count", "p50Ms", "p99Ms", "maxMs"], root.GetProperty("rekeyPush").EnumerateObject().Select(p => p.Name));
        Assert.True(root.GetProperty("cryptoFloorSeconds").GetDouble() > 0);
        Assert.True(root.GetProperty("crypto").GetProperty("signatures").GetInt64() > 0);
        Assert.Equal((10, 200, 5), (root.GetProperty("gateways").GetInt32(), root.GetProperty("pnes").GetInt32(),
            root.GetProperty("groups").GetInt32()));
        var members = root.GetProperty("members").GetInt32();
        Assert.True(members > 0);
        Assert.Equal(members, root.GetProperty("membersWithCurrentKey").GetInt32());
        Assert.True(File.Exists(Path.Combine(_data, "simulate.db")), "the run's state is in a SQLite file in --data");
        Assert.Contains("members holding the current epoch", stdout);
    }

    [Fact]
    public async Task With_a_low_LKH_threshold_the_push_groups_are_keyed_through_trees_that_the_state_command_recovers()
    {
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(3),
            "simulate", "--data", _data, "--gateways", "8", "--pnes", "40", "--groups", "2", "--members-per-group", "30",
            "--lkh-threshold", "3", "--quiet");
        Assert.True(exit == 0, $"exit {exit}\n{stdout}\n{stderr}");
        Assert.Matches(@"groups keyed through LKH\s*│\s*1\s", stdout);
        Assert.Matches(@"LKH rekey broadcasts \(copies, bytes each\)\s*│\s*[1-9]", stdout);

        var json = Path.Combine(_data, "state.json");
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(2), "state", "--data", _data, "--file", "simulate.db",
            "--json", json);
        Assert.True(exit == 0, stdout + stderr);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var groups = document.RootElement.GetProperty("groups").EnumerateArray()
            .ToDictionary(g => g.GetProperty("id").GetString()!, g => (g.GetProperty("mode").GetString(), g.GetProperty("lkhGateways").GetInt32()));
        Assert.Equal("Push", groups["grp-0000"].Item1);
        Assert.InRange(groups["grp-0000"].Item2, 4, 8); // a tree over the PN GWs its members are behind
        Assert.Equal(("Pull", 0), groups["grp-0001"]);
    }

    [Theory]
    [InlineData("--lkh-threshold", "-1", "--lkh-threshold must be at least 0")]
    [InlineData("--gateways", "0", "--gateways must be at least 1")]
    [InlineData("--pnes", "-5", "--pnes must be at least 1")]
    [InlineData("--db", "oracle", "oracle")]
    public async Task Simulate_rejects_bad_options_with_a_message_and_a_nonzero_exit(string option, string value, string message)
    {
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "simulate", option, value,
            "--data", _data);
        Assert.NotEqual(0, exit);
        Assert.Contains(message, stdout + stderr);
    }

    [Fact]
    public async Task Postgres_without_a_connection_string_is_refused()
    {
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "simulate", "--db", "postgres");
        Assert.NotEqual(0, exit);
        Assert.Contains("--db postgres needs --connection", stdout + stderr);
    }

    [Theory]
    [InlineData]
    [InlineData("simulate")]
    public async Task Every_command_has_help(params string[] command)
    {
        var (exit, stdout, _) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), [.. command, "--help"]);
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", stdout);
        Assert.Contains("Description:", stdout);
    }
}
