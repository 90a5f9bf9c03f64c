using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Host;

/// <summary>The command line as a new user meets it: documented defaults work, bad paths are refused before any work.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cpns-cli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task A_server_node_comes_up_with_only_a_port_and_a_data_folder_as_the_README_starts_it()
    {
        using var server = CpnsProcess.Start("server", "--port", FreePorts.Next().ToString(), "--data", _data);
        await server.WaitForOutputAsync("is up", TimeSpan.FromSeconds(60));
        server.Terminate();
        Assert.Equal(0, await server.WaitAsync(TimeSpan.FromSeconds(40)));
        Assert.DoesNotContain(" at ", server.Stderr);
    }

    [Fact]
    public async Task Certificates_from_cpns_certs_start_a_node_whose_folder_holds_no_CA_key()
    {
        var operatorFolder = Path.Combine(_data, "operator-pki");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "certs", "--certs", operatorFolder,
            "--node", "server", "--node", "gateway-a");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("made a new deployment CA", stdout);
        Assert.Contains("issued server", stdout);

        // What the operator copies to the server node's host: the CA certificate and the node's own .pfx, never ca.key.
        var nodeFolder = Path.Combine(_data, "server-node", "tls");
        Directory.CreateDirectory(nodeFolder);
        foreach (var file in new[] { "ca.crt", "server.pfx" })
            File.Copy(Path.Combine(operatorFolder, file), Path.Combine(nodeFolder, file));

        using var server = CpnsProcess.Start("server", "--port", FreePorts.Next().ToString(), "--data", Path.Combine(_data, "server-node"));
        await server.WaitForOutputAsync("is up", TimeSpan.FromSeconds(60));
        Assert.DoesNotContain("made", server.Stdout);
        Assert.False(File.Exists(Path.Combine(nodeFolder, "ca.key")));
        server.Terminate();
        Assert.Equal(0, await server.WaitAsync(TimeSpan.FromSeconds(40)));

        // A node of the deployment without its certificate is told how to get one, in one line.
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "gateway", "--seed", "akka.tcp://cpns@127.0.0.1:1",
            "--name", "b", "--data", Path.Combine(_data, "server-node"));
        Assert.Equal(3, exit);
        Assert.Contains("no certificate for node 'gateway-b'", stderr);
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Theory]
    [InlineData("simulate", "--json")]
    [InlineData("simulate", "--ack-log")]
    [InlineData("state", "--json")]
    [InlineData("charging", "--out")]
    public async Task An_output_file_in_a_missing_folder_is_refused_before_any_work(string command, string option)
    {
        var target = Path.Combine(_data, "no-such-folder", "out.json");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), command, option, target, "--data", _data);
        Assert.NotEqual(0, exit);
        Assert.Contains($"{option} {target}: the folder {Path.GetDirectoryName(target)} does not exist", stderr);
        Assert.False(Directory.Exists(_data), "nothing was started, so nothing was written");
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Fact]
    public async Task An_unreachable_database_is_one_clear_line_before_anything_starts()
    {
        var port = FreePorts.Next();
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "simulate", "--data", _data, "--quiet",
            "--db", "postgres", "--connection", $"Host=127.0.0.1;Port={port};Database=cpns;Username=cpns;Password=x;Timeout=3");
        Assert.Equal(3, exit);
        Assert.StartsWith($"cpns simulate: cannot reach PostgreSQL database 'cpns' at 127.0.0.1:{port} as 'cpns': ", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", stdout + stderr);
        Assert.DoesNotContain("CPNS simulation", stdout);
    }

    [Fact]
    public async Task A_missing_config_file_is_refused_at_parse_time()
    {
        var missing = Path.Combine(_data, "none.conf");
        var (exit, _, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "simulate", "--config", missing);
        Assert.NotEqual(0, exit);
        Assert.Contains($"--config {missing} does not exist", stderr);
    }
}
