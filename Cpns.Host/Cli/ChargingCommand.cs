using System.CommandLine;
using System.Globalization;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Host.Hosting;
using Spectre.Console;
using Cpns.Actors.Common;

namespace Cpns.Host.Cli;

/// <summary><c>cpns charging</c>: a charging statement (per user, per group, or everything) from a data folder, as CSV or JSON.</summary>
public static class ChargingCommand
{
    public enum Format
    {
        Csv,
        Json,
        Table,
    }

    public static Command Create()
    {
        var user = new Option<string?>("--user") { Description = "Statement of this user (a PNE or Application/Content Entity id)" };
        var group = new Option<string?>("--group") { Description = "Statement of this service group" };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Start of the period (ISO 8601, e.g. 2026-11-01T00:00:00Z)" };
        var to = new Option<DateTimeOffset?>("--to") { Description = "End of the period, exclusive (ISO 8601)" };
        var format = new Option<Format>("--format")
        {
            Description = "csv or json (the charging data records, for export), or table (a summary)",
            DefaultValueFactory = _ => Format.Table,
        };
        var output = new Option<FileInfo?>("--out") { Description = "Write the export to this file instead of standard output" };
        var file = new Option<string>("--file")
        {
            Description = $"SQLite file in --data to read ({Actors.Persistence.Storage.SqliteFileName} for server nodes)",
            DefaultValueFactory = _ => Actors.Persistence.Storage.SqliteFileName,
        };
        var serverId = new Option<string?>("--server-id") { Description = "The server whose records to read (default: from configuration)" };
        var common = new CommonOptions();
        var command = new Command("charging",
            "Print or export the charging data records of a user, a service group or everyone over a period, recovered " +
            "from a data folder or database")
        {
            user, group, from, to, format, output, file, serverId,
        };
        common.AddTo(command);
        OptionRules.WritableFile(output);
        command.Validators.Add(result =>
        {
            if (result.ValueOf(user) is not null && result.ValueOf(group) is not null)
                result.AddError("give --user or --group, not both");
            if (result.ValueOf(from) is { } start && result.ValueOf(to) is { } end && end <= start)
                result.AddError("--to must be after --from");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var node = common.Read(parse) with { SqliteFileName = parse.GetValue(file)! };
            if (node.Storage == Actors.Persistence.StorageKind.Sqlite &&
                !File.Exists(Path.Combine(node.DataDirectory, node.SqliteFileName)))
            {
                Console.Error.WriteLine($"no database at {Path.Combine(node.DataDirectory, node.SqliteFileName)}");
                return 2;
            }

            var query = parse.GetValue(user) is { } userId ? new GetStatement(StatementSubject.User, userId)
                : parse.GetValue(group) is { } groupId ? new GetStatement(StatementSubject.Group, groupId)
                : new GetStatement(StatementSubject.All, "*");
            query = query with
            {
                FromMs = parse.GetValue(from)?.ToUnixTimeMilliseconds() ?? 0,
                ToMs = parse.GetValue(to)?.ToUnixTimeMilliseconds() ?? long.MaxValue,
            };

            var overrides = parse.GetValue(serverId) is { } id ? $"cpns.server-id = \"{id}\"" : "";
            var config = HostConfiguration.Build(node, overrides, "server");
            var settings = CpnsSettings.From(config);
            using var host = AkkaHostBuilder.Build(config);
            await host.StartAsync(cancellationToken);
            try
            {
                var system = AkkaHostBuilder.ActorSystemOf(host);
                var timeout = settings.Timeouts.NodeStart;
                var secrets = Actors.Server.ServerSecrets.Generate(settings.ServerId); // reading records needs no key
                var charging = await Deployment.ChargingOf(Deployment.StartServer(system, secrets, settings), timeout);
                var statement = await charging.Ask<ChargingStatement>(query, timeout, cancellationToken);
                var text = parse.GetValue(format) switch
                {
                    Format.Csv => ChargingExport.ToCsv(statement.Records),
                    Format.Json => ChargingExport.ToJson(statement.Records),
                    _ => null,
                };
                if (text is null)
                    Print(statement);
                else if (parse.GetValue(output) is { } path)
                    await File.WriteAllTextAsync(path.FullName, text, cancellationToken);
                else
                    Console.Out.Write(text);
                return 0;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });
        return command;
    }

    private static void Print(ChargingStatement statement)
    {
        var title = statement.Subject == StatementSubject.All ? "all charging records" : $"statement of {statement.Subject.ToString().ToLowerInvariant()} {statement.SubjectId}";
        var table = new Table().Title(Markup.Escape(title)).AddColumn("user").AddColumn("service").AddColumn("group")
            .AddColumn(new TableColumn("sessions").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned())
            .AddColumn(new TableColumn("units").RightAligned()).AddColumn(new TableColumn($"amount ({statement.Currency})").RightAligned());
        foreach (var line in statement.Records.GroupBy(r => (r.UserId, r.ServiceId, r.GroupId)).OrderBy(g => g.Key))
            table.AddRow(Markup.Escape(line.Key.UserId), Markup.Escape(line.Key.ServiceId), Markup.Escape(line.Key.GroupId),
                line.Sum(r => r.Sessions).ToString(CultureInfo.InvariantCulture), line.Sum(r => r.VolumeBytes).ToString(CultureInfo.InvariantCulture),
                line.Sum(r => r.Units).ToString(CultureInfo.InvariantCulture), line.Sum(r => r.Amount).ToString(CultureInfo.InvariantCulture));
        table.AddRow("[bold]total[/]", "", "", statement.TotalSessions.ToString(CultureInfo.InvariantCulture),
            statement.TotalVolumeBytes.ToString(CultureInfo.InvariantCulture), statement.TotalUnits.ToString(CultureInfo.InvariantCulture),
            statement.TotalAmount.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
    }
}
