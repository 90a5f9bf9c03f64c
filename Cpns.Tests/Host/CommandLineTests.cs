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

        // A node of the deployment without its certificate (but provisioned) is told how to get one, in one line.
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "provision", "--data", Path.Combine(_data, "server-node"),
            "--name", "b");
        Assert.True(exit == 0, stdout + stderr);
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "gateway", "--seed", "akka.tcp://cpns@127.0.0.1:1",
            "--name", "b", "--data", Path.Combine(_data, "server-node"));
        Assert.Equal(3, exit);
        Assert.Contains("no certificate for node 'gateway-b'", stderr);
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_gateway_node_runs_the_Group_Key_Managers_from_a_folder_that_holds_no_server_secret()
    {
        var pki = Path.Combine(_data, "operator-pki");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "certs", "--certs", pki,
            "--node", "server", "--node", "gateway-a");
        Assert.True(exit == 0, stdout + stderr);
        var serverFolder = Path.Combine(_data, "server-node");
        var gatewayFolder = Path.Combine(_data, "gateway-node");
        foreach (var (folder, pfx) in new[] { (serverFolder, "server.pfx"), (gatewayFolder, "gateway-a.pfx") })
        {
            Directory.CreateDirectory(Path.Combine(folder, "tls"));
            foreach (var file in new[] { "ca.crt", pfx })
                File.Copy(Path.Combine(pki, file), Path.Combine(folder, "tls", file));
        }

        var port = FreePorts.Next();
        using var server = CpnsProcess.Start("server", "--port", port.ToString(), "--data", serverFolder, "--demo-groups", "1");
        await server.WaitForOutputAsync("is up", TimeSpan.FromSeconds(60));

        // What the operator gives the gateway node: its certificate, its devices' tokens, and its own key manager's file.
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "provision", "--data", serverFolder, "--name", "a",
            "--gateways", "1", "--pnes", "1", "--gateway-data", gatewayFolder);
        Assert.True(exit == 0, stdout + stderr);
        var managerFile = Path.Combine(gatewayFolder, "key-manager-a.json");
        Assert.Contains($"made the key manager cpns-server-gkm-a of gateway node 'a' in {managerFile}", stdout);
        var manager = Cpns.Actors.Distributed.KeyManagerSecrets.Load(managerFile, "cpns-server");
        Assert.Equal("cpns-server-gkm-a", manager.Identity.DeviceId);
        var managerCredential = Cpns.Actors.Security.CredentialVerifier.For(manager.Server.KmcRootPublicKey).Verify(manager.Credential,
            DateTimeOffset.UtcNow, null, "cpns-server-gkm-a", Cpns.Actors.Protocol.EntityKind.KeyManager);
        Assert.True(managerCredential.Valid, managerCredential.Detail);
        // Provisioned again, the node keeps its manager (its journal is sealed under that manager's KEK).
        (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "provision", "--data", serverFolder, "--name", "a",
            "--gateways", "1", "--pnes", "1", "--gateway-data", gatewayFolder);
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("kept the key manager cpns-server-gkm-a", stdout);
        Assert.Equal(manager.Identity.PublicKeys, Cpns.Actors.Distributed.KeyManagerSecrets.Load(managerFile, "cpns-server").Identity.PublicKeys);

        // The server's own key file is refused where the key managers' belongs, in one line.
        (exit, _, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), "gateway", "--seed", $"akka.ssl.tcp://cpns@127.0.0.1:{port}",
            "--name", "a", "--data", gatewayFolder, "--secrets", Path.Combine(serverFolder, "server-secrets.json"));
        Assert.Equal(2, exit);
        Assert.Contains("is not a key manager file", stderr);

        using var gateway = CpnsProcess.Start("gateway", "--seed", $"akka.ssl.tcp://cpns@127.0.0.1:{port}", "--port", FreePorts.Next().ToString(),
            "--name", "a", "--pnes", "1", "--data", gatewayFolder);
        // The demo group's key, made by a Group Key Manager on this node, reaches the node's PN GW and PNE.
        await gateway.WaitForOutputAsync("installed at a-p1", TimeSpan.FromSeconds(90));
        gateway.Terminate();
        server.Terminate();
        Assert.Equal(0, await gateway.WaitAsync(TimeSpan.FromSeconds(40)));
        Assert.Equal(0, await server.WaitAsync(TimeSpan.FromSeconds(40)));

        // Not one byte of the server's signing key, its KEK or the KMC root key is anywhere in the gateway node's folder.
        using var serverKeys = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(serverFolder, "server-secrets.json")));
        var secrets = new[] { "SigningKey", "AgreementKey", "Kek", "KmcRootKey" }
            .Select(field => Convert.FromBase64String(serverKeys.RootElement.GetProperty(field).GetString()!)).ToList();
        var files = Directory.GetFiles(gatewayFolder, "*", SearchOption.AllDirectories);
        Assert.Contains(files, f => f.EndsWith(".db", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var bytes = File.ReadAllBytes(file);
            var text = System.Text.Encoding.UTF8.GetString(bytes);
            foreach (var secret in secrets)
            {
                Assert.True(bytes.AsSpan().IndexOf(secret) < 0, $"{file} holds a server secret");
                Assert.DoesNotContain(Convert.ToBase64String(secret), text);
            }
        }
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

    [Theory]
    [InlineData("simulate", "--timeout", "0.5", "System.Int32")]
    [InlineData("simulate", "--pnes", "many", "System.Int32")]
    [InlineData("server", "--port", "http", "System.Int32")]
    public async Task A_value_that_does_not_parse_is_the_parser_s_one_error_not_an_exception(string command, string option,
        string value, string type)
    {
        var (exit, _, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromSeconds(30), command, option, value, "--data", _data);
        Assert.Equal(1, exit); // a parse error, before any work
        Assert.Contains($"Cannot parse argument '{value}' for option '{option}' as expected type '{type}'", stderr);
        Assert.DoesNotContain("Exception", stderr);
    }
}
