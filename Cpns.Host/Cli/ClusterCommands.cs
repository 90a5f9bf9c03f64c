using System.CommandLine;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Distributed;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Host.Api;
using Cpns.Host.Hosting;
using Cpns.Host.Provisioning;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary>
/// The distributed CPNS Server as real cluster nodes: <c>cpns server</c> (role <c>server</c>: the server entity and
/// the server's CSKMF), <c>cpns gateway</c> (role <c>gateway</c>: PN GWs with their PNEs, and Group Key
/// Managers), and <c>cpns status</c>, which asks any node how the cluster looks.
/// </summary>
public static class ClusterCommands
{
    private sealed class NodeOptionsSet
    {
        public Option<string> Hostname { get; } = new("--hostname")
        {
            Description = "Address this node listens on and is known by (use the same form everywhere: 127.0.0.1, not localhost)",
            DefaultValueFactory = _ => "127.0.0.1",
        };

        public Option<int> Port { get; }

        public Option<string[]> Seeds { get; } = new("--seed")
        {
            Description = "A seed node to join, e.g. akka.ssl.tcp://cpns@127.0.0.1:4053 (repeat for several)",
            AllowMultipleArgumentsPerToken = true,
        };

        public CommonOptions Common { get; } = new("WARNING");

        public Option<string?> Certs { get; } = CertsOption();

        public Option<string?> NodeName { get; } = new("--node-name")
        {
            Description = "Name of this node's TLS certificate (<name>.pfx in --certs); default: server, or gateway-<--name>",
        };

        public NodeOptionsSet(int defaultPort)
        {
            Port = new Option<int>("--port") { Description = "TCP port of this node (0: any free port)", DefaultValueFactory = _ => defaultPort };
        }

        public void AddTo(Command command)
        {
            command.Add(Hostname);
            command.Add(Port);
            command.Add(Seeds);
            command.Add(Certs);
            command.Add(NodeName);
            Common.AddTo(command);
            command.Validators.Add(result =>
            {
                if (result.ValueOf(Port) is < 0 or > 65535)
                    result.AddError("--port must be between 0 and 65535");
                foreach (var seed in result.ValueOf(Seeds) ?? [])
                {
                    if (!Address.TryParse(NodeTransport.NodeAddress(seed), out _))
                        result.AddError($"--seed '{seed}' is not a node address like akka.ssl.tcp://cpns@127.0.0.1:4053");
                }

                if (result.ValueOf(NodeName) is { } nodeName && !DeploymentCertificates.IsValidNodeName(nodeName))
                    result.AddError($"--node-name '{nodeName}' is not a node name (letters, digits, '-', '_', '.')");
            });
        }

        /// <summary>This node's TLS identity; the first server node of a new deployment makes the deployment CA.</summary>
        public NodeTransport Transport(ParseResult parse, NodeOptions node, string defaultName, bool createAuthority)
        {
            var (transport, made) = NodeTransport.LoadOrIssue(CertsFolder(parse, Certs, node), parse.GetValue(NodeName) ?? defaultName,
                createAuthority, [parse.GetValue(Hostname)!]);
            if (made is not null)
                Say($"made {made}");
            return transport;
        }

        public Config Build(ParseResult parse, NodeOptions node, string role, IReadOnlyList<string> seeds) =>
            ClusterNodes.WithClusterDefaults(HostConfiguration.Build(node, $"""
                akka.remote.dot-netty.tcp.hostname = "{parse.GetValue(Hostname)}"
                akka.remote.dot-netty.tcp.port = {parse.GetValue(Port)}
                akka.cluster.roles = ["{role}"]
                akka.cluster.seed-nodes = [{string.Join(", ", seeds.Select(s => $"\"{NodeTransport.NodeAddress(s)}\""))}]
                """, role, "cluster"));
    }

    public static Command Server()
    {
        var options = new NodeOptionsSet(4053);
        var demoGroups = new Option<int>("--demo-groups")
        {
            Description = "Create this many service groups from the registered PNEs and keep changing their membership (0: none)",
            DefaultValueFactory = _ => 0,
        };
        var demoMembers = new Option<int>("--demo-members") { Description = "Members per demo group", DefaultValueFactory = _ => 4 };
        var demoInterval = new Option<double>("--demo-interval")
        {
            Description = "Seconds between demo membership changes",
            DefaultValueFactory = _ => 2,
        };
        var http = new Option<string?>("--http")
        {
            Description = "Serve the HTTP API (CPNS-5 for ACEs, the operator's interface, /metrics, /health/*) over HTTPS on this " +
                          "address, e.g. 127.0.0.1:8443; clients come from `cpns api-client add`",
        };
        var apiRate = new Option<int>("--api-rate")
        {
            Description = "Requests per second each API client may make (bursts up to twice that); more get 429",
            DefaultValueFactory = _ => 50,
        };
        var command = new Command("server",
            "Run a server node of the distributed CPNS Server: the server entity (registry, SMF, CSKMF, ...) " +
            "in an Akka cluster; gateway nodes join it. Runs until stopped (Ctrl-C or SIGTERM leave the cluster cleanly)")
        {
            demoGroups, demoMembers, demoInterval, http, apiRate,
        };
        options.AddTo(command);
        OptionRules.AtLeast(demoGroups, 0);
        OptionRules.AtLeast(demoMembers, 1);
        OptionRules.Positive(demoInterval);
        OptionRules.AtLeast(apiRate, 1);
        command.Validators.Add(result =>
        {
            if (result.ValueOf(http) is { } listen && !ApiOptions.TryParseListen(listen, out _))
                result.AddError($"--http '{listen}' is not an address and port like 127.0.0.1:8443");
            if ((result.ValueOf(options.Seeds) ?? []).Length == 0 && result.ValueOf(options.Port) == 0)
                result.AddError("the first server node seeds the cluster itself: give it a --port (or --seed another node)");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var node = options.Common.Read(parse);
            var seeds = parse.GetValue(options.Seeds) is { Length: > 0 } given
                ? given
                : [$"{NodeTransport.Scheme}://{AkkaHostBuilder.SystemName}@{parse.GetValue(options.Hostname)}:{parse.GetValue(options.Port)}"];
            var config = options.Build(parse, node, ClusterNodes.ServerRole, seeds);
            var settings = CpnsSettings.From(config);
            Directory.CreateDirectory(node.DataDirectory);
            var secretsPath = Path.Combine(node.DataDirectory, ServerSecrets.FileName);
            var secrets = ServerSecrets.LoadOrCreate(secretsPath, settings.ServerId);
            var transport = options.Transport(parse, node, "server", createAuthority: true);

            using var host = AkkaHostBuilder.Build(config, transport, akka => akka.WithGroupKeyManagerProxy(settings));
            await host.StartAsync(cancellationToken);
            var system = AkkaHostBuilder.ActorSystemOf(host);
            try
            {
                var keyManagers = await AkkaHostBuilder.RequiredActorAsync<GroupKeyManagers>(host, cancellationToken);
                var server = await ClusterNodes.StartServerNodeAsync(system, secrets, settings, keyManagers).WaitAsync(cancellationToken);
                var endpoints = await Deployment.EndpointsOf(server, settings.Timeouts.NodeStart);
                Say($"server node {Akka.Cluster.Cluster.Get(system).SelfAddress} is up (server id {settings.ServerId}, key file {secretsPath})");
                if (parse.GetValue(demoGroups) > 0)
                {
                    system.ActorOf(GroupChurn.Props(endpoints, parse.GetValue(demoGroups), parse.GetValue(demoMembers),
                        TimeSpan.FromSeconds(parse.GetValue(demoInterval)), line => Say($"group {line}")), "group-churn");
                }

                await using var inbox = new ProvisioningInbox(node.DataDirectory, endpoints.Registry, settings.Timeouts.Ask, Say);
                await using var api = parse.GetValue(http) is { } listen
                    ? await StartApiAsync(listen, parse.GetValue(apiRate), transport, node, system, endpoints,
                        await Deployment.ChargingOf(server, settings.Timeouts.NodeStart), cancellationToken)
                    : null;
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // stopped: leave the cluster below
            }

            Say("server node leaving the cluster");
            await host.StopAsync(CancellationToken.None);
            return 0;
        });
        return command;
    }

    private static async Task<Microsoft.AspNetCore.Builder.WebApplication> StartApiAsync(string listen, int rate, NodeTransport transport,
        NodeOptions node, ActorSystem system, ServerEndpoints endpoints, IActorRef charging, CancellationToken cancellationToken)
    {
        ApiOptions.TryParseListen(listen, out var address);
        var clients = new ApiClientStore(Path.Combine(node.DataDirectory, ApiClientStore.FileName));
        var api = ApiHost.Build(new ApiOptions
        {
            Listen = address, Certificate = transport.Certificate, Clients = clients, RequestsPerSecond = rate, Burst = rate * 2,
        }, system, endpoints, charging);
        await api.StartAsync(cancellationToken);
        var url = ApiHost.BaseAddress(api);
        Say($"HTTP API on {url} (docs {url}docs, OpenAPI {url}openapi/v1.json, metrics {url}metrics, health {url}health/ready); " +
            $"{clients.List().Count} clients in {clients.Path}");
        return api;
    }

    public static Command Gateway()
    {
        var options = new NodeOptionsSet(0);
        var name = new Option<string?>("--name")
        {
            Description = "Prefix of this node's PN GW and PNE ids (<name>-g1, <name>-p1, ...); default: from the port",
        };
        var gateways = new Option<int>("--gateways") { Description = "PN GWs this node hosts", DefaultValueFactory = _ => 1 };
        var pnes = new Option<int>("--pnes") { Description = "PNEs, spread over this node's PN GWs", DefaultValueFactory = _ => 4 };
        var secretsFile = new Option<FileInfo?>("--secrets")
        {
            Description = $"This node's Group Key Manager key file, made by cpns provision (default: {KeyManagerSecrets.FileNameFor("<name>")} " +
                          "in --data); never the server's own key file",
        };
        var lifetime = new Option<int>("--lifetime")
        {
            Description = "Registration lifetime the PN GWs and PNEs ask for, in seconds (0: the server's default)",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("gateway",
            "Run a gateway node of the distributed CPNS Server: PN GWs with their PNEs, and the Group Key Managers of " +
            "service groups, in the Akka cluster of --seed. Runs until stopped (Ctrl-C or SIGTERM leave cleanly)")
        {
            name, gateways, pnes, secretsFile, lifetime,
        };
        options.AddTo(command);
        OptionRules.ExistingFile(secretsFile);
        OptionRules.AtLeast(gateways, 0);
        OptionRules.AtLeast(pnes, 0);
        OptionRules.AtLeast(lifetime, 0);
        command.Validators.Add(result =>
        {
            if ((result.ValueOf(options.Seeds) ?? []).Length == 0)
                result.AddError("a gateway node joins a cluster: give --seed akka.ssl.tcp://cpns@<host>:<port> of a running node");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(pnes) > 0 && parse.GetValue(gateways) == 0)
            {
                Console.Error.WriteLine("cpns gateway: PNEs need a PN GW: --gateways must be at least 1");
                return 2;
            }

            var node = options.Common.Read(parse);
            var config = options.Build(parse, node, ClusterNodes.GatewayRole, parse.GetValue(options.Seeds)!);
            var settings = CpnsSettings.From(config);
            var prefixAhead = parse.GetValue(name) ?? (parse.GetValue(options.Port) is > 0 and var ownPort ? $"n{ownPort}" : null);
            var secretsPath = parse.GetValue(secretsFile)?.FullName ??
                              (prefixAhead is null ? null : Path.Combine(node.DataDirectory, KeyManagerSecrets.FileNameFor(prefixAhead)));
            if (secretsPath is null)
            {
                Console.Error.WriteLine("cpns gateway: with a random port, name the node (--name) or its key manager file (--secrets)");
                return 2;
            }

            KeyManagerSecrets secrets;
            try
            {
                secrets = KeyManagerSecrets.Load(secretsPath, settings.ServerId);
            }
            catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
            {
                Console.Error.WriteLine($"cpns gateway: {e.Message} (cpns provision --name {prefixAhead ?? "<name>"} makes it on the " +
                                        "server's host; copy it to this node, owner-only, or pass --secrets)");
                return 2;
            }

            var nodeName = parse.GetValue(name) is { } given ? $"gateway-{given}"
                : parse.GetValue(options.Port) is > 0 and var port ? $"gateway-n{port}" : "gateway";
            var transport = options.Transport(parse, node, nodeName, createAuthority: false);

            using var host = AkkaHostBuilder.Build(config, transport, akka => akka.WithGroupKeyManagers(secrets, settings));
            await host.StartAsync(cancellationToken);
            var system = AkkaHostBuilder.ActorSystemOf(host);
            try
            {
                var keyManagers = await AkkaHostBuilder.RequiredActorAsync<GroupKeyManagers>(host, cancellationToken);
                await ClusterNodes.StartGatewayNodeAsync(system, keyManagers).WaitAsync(cancellationToken);
                var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
                var prefix = parse.GetValue(name) ?? $"n{self.Port}";
                var registry = await ClusterNodes.FindServerRegistryAsync(system, settings.Timeouts.ServerJoin).WaitAsync(cancellationToken);
                system.ActorOf(Props.Create(() => new KeyInstallReporter(line => Say(line))), "key-install-reporter");

                // Kept in the data folder: started again, the node's entities come back with the keys their ids are bound to.
                var identities = new IdentityFiles(Path.Combine(node.DataDirectory, "identities", prefix));
                var unprovisioned = Enumerable.Range(1, parse.GetValue(gateways)).Select(i => $"{prefix}-g{i}")
                    .Concat(Enumerable.Range(1, parse.GetValue(pnes)).Select(j => $"{prefix}-p{j}"))
                    .Where(id => !identities.Has(id) && identities.EnrolmentToken(id) is null).ToList();
                if (unprovisioned.Count > 0)
                    Say($"{unprovisioned.Count} devices have no enrolment token in {identities.Folder} ({unprovisioned[0]}, ...) and cannot enrol: " +
                        $"cpns provision --data <the server node's data> --gateway-data {node.DataDirectory} --name {prefix} " +
                        $"--gateways {parse.GetValue(gateways)} --pnes {parse.GetValue(pnes)}");
                var gatewayRefs = new List<IActorRef>();
                for (var i = 1; i <= parse.GetValue(gateways); i++)
                {
                    var identity = identities.LoadOrCreate($"{prefix}-g{i}", EntityKind.PnGateway);
                    gatewayRefs.Add(Deployment.StartGateway(system, identity, secrets.Server, registry, settings,
                        lifetimeSeconds: parse.GetValue(lifetime), enrolmentToken: identities.EnrolmentToken(identity.DeviceId)));
                }

                for (var j = 1; j <= parse.GetValue(pnes); j++)
                {
                    var identity = identities.LoadOrCreate($"{prefix}-p{j}", EntityKind.Pne);
                    Deployment.StartPne(system, identity, secrets.Server, gatewayRefs[(j - 1) % gatewayRefs.Count], settings,
                        lifetimeSeconds: parse.GetValue(lifetime), enrolmentToken: identities.EnrolmentToken(identity.DeviceId));
                }

                Say($"gateway node {self} is up: {parse.GetValue(gateways)} PN GWs ({prefix}-g*), {parse.GetValue(pnes)} PNEs ({prefix}-p*)");
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // stopped: leave the cluster below
            }

            Say("gateway node leaving the cluster");
            await host.StopAsync(CancellationToken.None);
            return 0;
        });
        return command;
    }

    public static Command Status()
    {
        var nodeAddress = new Option<string>("--node")
        {
            Description = "Any node of the cluster, e.g. akka.ssl.tcp://cpns@127.0.0.1:4053",
            DefaultValueFactory = _ => "akka.ssl.tcp://cpns@127.0.0.1:4053",
        };
        var json = new Option<bool>("--json") { Description = "Print the status as JSON instead of tables" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the node's answer", DefaultValueFactory = _ => 15 };
        var data = new CommonOptions().Data;
        var certs = CertsOption();
        var nodeName = new Option<string>("--node-name")
        {
            Description = "Name of the TLS certificate to ask with (<name>.pfx in --certs)",
            DefaultValueFactory = _ => "status",
        };
        var api = new Option<string?>("--api")
        {
            Description = "Ask the server node's HTTP API instead (e.g. https://127.0.0.1:8443), as an operator client; " +
                          "the node's certificate is checked against ca.crt in --certs",
        };
        var apiKey = new Option<string?>("--api-key")
        {
            Description = "An operator client's API key for --api (default: the CPNS_API_KEY environment variable)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CPNS_API_KEY"),
        };
        var command = new Command("status",
            "Ask a node of a running CPNS cluster for its members and roles, which gateway node manages which service group's " +
            "keys, and each group's current epoch with the PN GWs that acknowledged it")
        {
            nodeAddress, json, timeout, data, certs, nodeName, api, apiKey,
        };
        OptionRules.AtLeast(timeout, 1);
        command.Validators.Add(result =>
        {
            if (result.ValueOf(api) is { } given && !(Uri.TryCreate(given, UriKind.Absolute, out var uri) && uri.Scheme == "https"))
                result.AddError($"--api '{given}' is not an https:// address of a server node's API");
            if (result.ValueOf(api) is not null && string.IsNullOrEmpty(result.ValueOf(apiKey)))
                result.AddError("--api needs an operator's key: --api-key or CPNS_API_KEY (cpns api-client add --role operator)");
        });
        command.Validators.Add(result =>
        {
            if (!Address.TryParse(NodeTransport.NodeAddress(result.ValueOf(nodeAddress)), out _))
                result.AddError($"--node '{result.ValueOf(nodeAddress)}' is not a node address like akka.ssl.tcp://cpns@127.0.0.1:4053");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var folder = parse.GetValue(certs) ?? Path.Combine(Path.GetFullPath(parse.GetValue(data)!), CertsSubfolder);
            if (parse.GetValue(api) is { } apiAddress)
            {
                var apiUri = new Uri(apiAddress.EndsWith('/') ? apiAddress : apiAddress + "/");
                var answer = await ApiStatus.GetAsync(apiUri, parse.GetValue(apiKey)!, folder, TimeSpan.FromSeconds(parse.GetValue(timeout)),
                    cancellationToken);
                if (answer.Status is not { } fromApi)
                {
                    Console.Error.WriteLine($"cpns status: {answer.Problem}");
                    return 2;
                }

                if (parse.GetValue(json))
                    Console.Out.WriteLine(JsonSerializer.Serialize(fromApi, SimulateCommand.JsonOptions));
                else
                    Print(fromApi);
                return 0;
            }

            // A plain remote client, not a cluster member: asking changes nothing in the cluster.
            var config = ConfigurationFactory.ParseString("""
                    akka.loglevel = ERROR
                    akka.stdout-loglevel = ERROR
                    akka.actor.provider = remote
                    akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
                    """).WithFallback(CpnsConfig.Load());
            // The node transport is mutual TLS: asking takes a certificate of the deployment CA too.
            var (transport, _) = NodeTransport.LoadOrIssue(folder, parse.GetValue(nodeName)!, createAuthority: false);
            using var host = AkkaHostBuilder.Build(config, transport);
            await host.StartAsync(cancellationToken);
            try
            {
                var system = AkkaHostBuilder.ActorSystemOf(host);
                var status = await system.ActorSelection($"{NodeTransport.NodeAddress(parse.GetValue(nodeAddress)!)}/user/{ClusterNodes.StatusActorName}")
                    .Ask<ClusterStatus>(GetClusterStatus.Instance, TimeSpan.FromSeconds(parse.GetValue(timeout)), cancellationToken);
                if (parse.GetValue(json))
                    Console.Out.WriteLine(JsonSerializer.Serialize(status, SimulateCommand.JsonOptions));
                else
                    Print(status);
                return 0;
            }
            catch (AskTimeoutException)
            {
                Console.Error.WriteLine($"cpns status: no answer from {parse.GetValue(nodeAddress)} within {parse.GetValue(timeout)} s " +
                                        "(is a cpns server or gateway node running there?)");
                return 2;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });
        return command;
    }

    public const string CertsSubfolder = "tls";

    private static Option<string?> CertsOption() => new("--certs")
    {
        Description = $"Folder of the deployment's TLS certificates (ca.crt, this node's .pfx; default: {CertsSubfolder}/ in --data)",
    };

    private static string CertsFolder(ParseResult parse, Option<string?> certs, NodeOptions node) =>
        parse.GetValue(certs) is { } given ? Path.GetFullPath(given) : Path.Combine(node.DataDirectory, CertsSubfolder);

    private static void Say(string line) => Console.Out.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}");

    private static void Print(ClusterStatus status)
    {
        var members = new Table().Title($"cluster seen from {Markup.Escape(status.Node)}").AddColumn("node").AddColumn("status")
            .AddColumn("roles").AddColumn("reachable");
        foreach (var member in status.Members)
            members.AddRow(Markup.Escape(member.Address), member.Status, string.Join(",", member.Roles), member.Reachable ? "yes" : "[red]no[/]");
        AnsiConsole.Write(members);

        var groups = new Table().Title("service groups").AddColumn("group").AddColumn(new TableColumn("epoch").RightAligned())
            .AddColumn(new TableColumn("members").RightAligned()).AddColumn("group key manager on").AddColumn("PN GWs acked")
            .AddColumn("PN GWs pending");
        foreach (var group in status.Groups)
            groups.AddRow(Markup.Escape(group.GroupId), group.Epoch.ToString(), group.Members.ToString(),
                Markup.Escape(group.ManagerNode ?? "(not running)"), Markup.Escape(string.Join(" ", group.Acknowledged)),
                Markup.Escape(string.Join(" ", group.Pending)));
        AnsiConsole.Write(groups);
    }

    /// <summary>Prints every group key a holder on this node installs.</summary>
    private sealed class KeyInstallReporter : ReceiveActor
    {
        public KeyInstallReporter(Action<string> report)
        {
            Context.System.EventStream.Subscribe(Self, typeof(KeyInstalled));
            Receive<KeyInstalled>(installed => report(
                $"key {installed.GroupId}#{installed.Epoch} installed at {installed.HolderId} ({installed.Mode.ToString().ToLowerInvariant()})"));
        }
    }
}
