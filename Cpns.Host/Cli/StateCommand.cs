using System.CommandLine;
using System.Text.Json;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Server;
using Cpns.Host.Hosting;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary><c>cpns state</c>: what a data folder (or database) holds — recovered by the server's own actors.</summary>
public static class StateCommand
{
    public sealed record GatewayState(string Id, string RegistrationId);

    public sealed record PneState(string Id, string Gateway, string RegistrationId);

    /// <param name="LkhGateways">PN GWs in the group's logical key hierarchy (0: keyed per PN GW).</param>
    public sealed record GroupSummary(string Id, string Mode, long Epoch, IReadOnlyList<string> Members, string? KeyCheck,
        int LkhGateways = 0);

    public sealed record DurableState(IReadOnlyList<GatewayState> Gateways, IReadOnlyList<PneState> Pnes, IReadOnlyList<GroupSummary> Groups);

    public static Command Create()
    {
        var file = new Option<string>("--file")
        {
            Description = $"SQLite file in --data to read ({Actors.Persistence.Storage.SqliteFileName} for server nodes, " +
                          $"{SimulateCommand.SimulationDatabase} for the last simulation)",
            DefaultValueFactory = _ => Actors.Persistence.Storage.SqliteFileName,
        };
        var serverId = new Option<string?>("--server-id") { Description = "The server whose state to read (default: from configuration)" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the state as JSON to this file" };
        var common = new CommonOptions();
        var command = new Command("state",
            "Recover the durable server state a data folder or database holds — PN inventory, service groups, key epochs — " +
            "and print it")
        {
            file, serverId, json,
        };
        common.AddTo(command);
        OptionRules.WritableFile(json);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var node = common.Read(parse) with { SqliteFileName = parse.GetValue(file)! };
            if (node.Storage == Actors.Persistence.StorageKind.Sqlite &&
                !File.Exists(Path.Combine(node.DataDirectory, node.SqliteFileName)))
            {
                AnsiConsole.MarkupLine($"[red]no database at {Markup.Escape(Path.Combine(node.DataDirectory, node.SqliteFileName))}[/]");
                return 2;
            }

            var overrides = parse.GetValue(serverId) is { } id ? $"cpns.server-id = \"{id}\"" : "";
            var config = HostConfiguration.Build(node, overrides, "server");
            var settings = CpnsSettings.From(config);
            var secrets = LoadSecrets(node.DataDirectory, settings.ServerId);
            using var host = AkkaHostBuilder.Build(config);
            await host.StartAsync(cancellationToken);
            try
            {
                var state = await ReadAsync(AkkaHostBuilder.ActorSystemOf(host), settings, secrets);
                Print(state);
                if (parse.GetValue(json) is { } output)
                    await File.WriteAllTextAsync(output.FullName, JsonSerializer.Serialize(state, SimulateCommand.JsonOptions),
                        cancellationToken);
                return 0;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });
        return command;
    }

    private static ServerSecrets LoadSecrets(string dataDirectory, string serverId)
    {
        foreach (var name in new[] { ServerSecrets.FileName, SimulateCommand.SimulationSecrets })
        {
            var path = Path.Combine(dataDirectory, name);
            if (File.Exists(path))
            {
                try
                {
                    return ServerSecrets.LoadOrCreate(path, serverId);
                }
                catch (InvalidDataException)
                {
                    // the secrets of another server id; try the next file
                }
            }
        }

        // Listing needs no secret: key epochs are shown by their check values, read from the journal.
        return ServerSecrets.Generate(serverId);
    }

    public static async Task<DurableState> ReadAsync(ActorSystem system, CpnsSettings settings, ServerSecrets secrets)
    {
        var timeout = settings.Timeouts.NodeStart;
        var server = await Deployment.EndpointsOf(Deployment.StartServer(system, secrets, settings), timeout);
        var inventory = await server.Registry.Ask<Inventory>(GetInventory.Instance, timeout);
        var groups = await server.Smf.Ask<GroupList>(ListGroups.Instance, timeout);
        var summaries = new List<GroupSummary>();
        foreach (var group in groups.Groups)
        {
            var key = await server.Cskmf.Ask<HeldGroupKey>(new GetKeyState(group.GroupId), timeout);
            var tree = await server.Cskmf.Ask<LkhState>(new GetLkhState(group.GroupId), timeout);
            summaries.Add(new GroupSummary(group.GroupId, group.Mode.ToString(), group.Epoch, group.Members, key.KeyCheck?.ToHex(),
                tree.Members));
        }

        return new DurableState(
            inventory.Gateways.Select(g => new GatewayState(g.DeviceId, g.RegistrationId)).ToList(),
            inventory.Pnes.Select(p => new PneState(p.DeviceId, p.GatewayId, p.RegistrationId)).ToList(),
            summaries);
    }

    private static void Print(DurableState state)
    {
        var table = new Table().Title("durable server state").AddColumn("what").AddColumn(new TableColumn("count").RightAligned());
        table.AddRow("PN GWs registered", state.Gateways.Count.ToString());
        table.AddRow("PNEs registered", state.Pnes.Count.ToString());
        table.AddRow("service groups", state.Groups.Count.ToString());
        table.AddRow("group memberships", state.Groups.Sum(g => g.Members.Count).ToString());
        table.AddRow("key epochs issued", state.Groups.Sum(g => g.Epoch).ToString());
        table.AddRow("groups keyed through LKH", state.Groups.Count(g => g.LkhGateways > 0).ToString());
        AnsiConsole.Write(table);
    }
}
