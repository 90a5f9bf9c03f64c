using System.CommandLine;
using System.Text.Json;
using Cpns.Actors.Benchmarks;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary><c>cpns bench</c>: measurements of the enabler's costs, each against its baseline in the same run.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the enabler's costs (each compared with its baseline in the same run)");
        bench.Subcommands.Add(Rekey());
        bench.Subcommands.Add(Persistence());
        bench.Subcommands.Add(Channel());
        return bench;
    }

    private static Command Channel()
    {
        var messages = new Option<int>("--messages")
        {
            Description = "Messages per measured round (the median round is reported)",
            DefaultValueFactory = _ => 200,
        };
        var rounds = new Option<int>("--rounds") { Description = "Measured rounds per message and scheme", DefaultValueFactory = _ => 15 };
        var warmup = new Option<int>("--warmup") { Description = "Rounds before measuring", DefaultValueFactory = _ => 3 };
        OptionRules.AtLeast(messages, 1);
        OptionRules.AtLeast(rounds, 1);
        OptionRules.AtLeast(warmup, 0);
        var json = JsonOutput();
        var command = new Command("channel",
            "Cost and bytes of one message between entities, sent and received: a signed envelope against a session record, " +
            "side by side; the session handshake measured apart")
        {
            messages, rounds, warmup, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var host = Hosting.AkkaHostBuilder.Build(Akka.Configuration.ConfigurationFactory.ParseString(
                "akka.loglevel = WARNING").WithFallback(Actors.CpnsConfig.Load()));
            await host.StartAsync(cancellationToken);
            IReadOnlyList<ChannelMeasurement> results = [];
            try
            {
                var system = Hosting.AkkaHostBuilder.ActorSystemOf(host);
                await AnsiConsole.Status().StartAsync("measuring", context =>
                {
                    results = ChannelBenchmark.Run(system, parse.GetValue(messages), parse.GetValue(warmup), parse.GetValue(rounds),
                        new Progress<string>(what => context.Status($"measuring {what}")));
                    return Task.CompletedTask;
                });
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }

            var table = new Table().Title("one message sent and received (median)")
                .AddColumn("message").AddColumn("scheme").AddColumn(new TableColumn("µs").RightAligned())
                .AddColumn(new TableColumn("bytes").RightAligned()).AddColumn(new TableColumn("baseline ÷ this (signed ÷ session)").RightAligned());
            foreach (var row in results)
            {
                var baseline = results.FirstOrDefault(r => r.Message == row.Message && r.Scheme == row.Scheme switch
                {
                    "session record" => "signed envelope",
                    "AES-256-GCM seal + open only" => "Ed25519 sign + verify only",
                    _ when row.Message.StartsWith("X.509", StringComparison.Ordinal) && row.Scheme.EndsWith("(in use)", StringComparison.Ordinal) =>
                        "BouncyCastle",
                    _ => "",
                });
                var ratio = baseline is null ? "" : (baseline.MicrosPerMessage / row.MicrosPerMessage).ToString("0.0") + "×";
                table.AddRow(Markup.Escape(row.Message), row.Scheme, row.MicrosPerMessage.ToString("0.00"), row.Bytes.ToString(), ratio);
            }

            AnsiConsole.Write(table);
            await WriteJsonAsync(parse.GetValue(json), results, cancellationToken);

            return 0;
        });
        return command;
    }

    private static Command Persistence()
    {
        var registrations = new Option<int>("--registrations")
        {
            Description = "PNE registrations to persist per batch size",
            DefaultValueFactory = _ => 2000,
        };
        OptionRules.AtLeast(registrations, 1);
        var batches = new Option<string>("--batch")
        {
            Description = "Batch sizes, comma separated; 1 is the unbatched baseline (one journal round trip per registration)",
            DefaultValueFactory = _ => "1,50,500",
        };
        batches.Validators.Add(result =>
        {
            if (ParseSizes(result.GetValueOrDefault<string>()) is null)
                result.AddError("--batch takes positive whole numbers separated by commas, e.g. 1,50,500");
        });
        var json = JsonOutput();
        var common = new CommonOptions();
        var command = new Command("persistence",
            "PNE registrations persisted per second on the chosen database: batched as the registry does, against one event " +
            "per registration")
        {
            registrations, batches, json,
        };
        common.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var node = common.Read(parse) with { SqliteFileName = "bench.db" };
            if (node.Storage == Actors.Persistence.StorageKind.Sqlite)
            {
                Directory.CreateDirectory(node.DataDirectory);
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                    File.Delete(Path.Combine(node.DataDirectory, "bench.db" + suffix));
            }

            var config = Hosting.HostConfiguration.Build(node);
            using var host = Hosting.AkkaHostBuilder.Build(config);
            await host.StartAsync(cancellationToken);
            IReadOnlyList<PersistenceMeasurement> results = [];
            try
            {
                var system = Hosting.AkkaHostBuilder.ActorSystemOf(host);
                await AnsiConsole.Status().StartAsync("persisting", async context =>
                {
                    results = await PersistenceBenchmark.RunAsync(system, Actors.CpnsSettings.From(config),
                        parse.GetValue(registrations), ParseSizes(parse.GetValue(batches))!,
                        new Progress<int>(b => context.Status($"persisting in batches of {b}")));
                });
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }

            var baseline = results.FirstOrDefault(r => r.BatchSize == 1)?.RegistrationsPerSecond;
            var table = new Table().Title($"registrations persisted per second ({node.Storage})")
                .AddColumn(new TableColumn("batch").RightAligned()).AddColumn(new TableColumn("events").RightAligned())
                .AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("registrations/s").RightAligned())
                .AddColumn(new TableColumn("× unbatched").RightAligned());
            foreach (var r in results)
                table.AddRow(r.BatchSize.ToString(), r.Events.ToString(), r.Seconds.ToString("0.000"),
                    r.RegistrationsPerSecond.ToString("0"), baseline is { } b ? (r.RegistrationsPerSecond / b).ToString("0.0") : "");
            AnsiConsole.Write(table);
            await WriteJsonAsync(parse.GetValue(json), results, cancellationToken);
            return 0;
        });
        return command;
    }

    private static Command Rekey()
    {
        var members = new Option<string>("--members")
        {
            Description = "Group sizes to measure, comma separated",
            DefaultValueFactory = _ => "100,1000,10000",
        };
        members.Validators.Add(result =>
        {
            if (ParseSizes(result.GetValueOrDefault<string>()) is null)
                result.AddError("--members takes positive whole numbers separated by commas, e.g. 100,1000,10000");
        });
        var warmup = new Option<int>("--warmup") { Description = "Rekeys before measuring, per size and scheme", DefaultValueFactory = _ => 20 };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Measured rekeys per size and scheme (the median is reported)",
            DefaultValueFactory = _ => 41,
        };
        OptionRules.AtLeast(warmup, 0);
        OptionRules.AtLeast(repetitions, 1);
        var json = JsonOutput();

        var command = new Command("rekey",
            "Time and bytes of one membership-change rekey at the key manager: per-member wrapping (flat) against the " +
            "logical key hierarchy (lkh)")
        {
            members, warmup, repetitions, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var sizes = ParseSizes(parse.GetValue(members))!;
            IReadOnlyList<RekeyMeasurement> results = [];
            await AnsiConsole.Status().StartAsync("measuring", context =>
            {
                results = RekeyBenchmark.Run(sizes, parse.GetValue(warmup), parse.GetValue(repetitions),
                    new Progress<(int Members, string Scheme)>(p => context.Status($"measuring {p.Scheme} at {p.Members} members")));
                return Task.CompletedTask;
            });

            var table = new Table().Title("rekey per membership change (median)")
                .AddColumn(new TableColumn("members").RightAligned()).AddColumn("scheme")
                .AddColumn(new TableColumn("µs per rekey").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned())
                .AddColumn(new TableColumn("flat ÷ lkh time").RightAligned());
            foreach (var group in results.GroupBy(r => r.Members))
            {
                var flat = group.Single(r => r.Scheme == "flat");
                var lkh = group.Single(r => r.Scheme == "lkh");
                table.AddRow(flat.Members.ToString(), "flat", flat.RekeyMicros.ToString("0.0"), flat.Bytes.ToString(), "");
                table.AddRow(lkh.Members.ToString(), "lkh", lkh.RekeyMicros.ToString("0.0"), lkh.Bytes.ToString(),
                    (flat.RekeyMicros / lkh.RekeyMicros).ToString("0.0") + "×");
            }

            AnsiConsole.Write(table);
            await WriteJsonAsync(parse.GetValue(json), results, cancellationToken);

            return 0;
        });
        return command;
    }

    /// <summary>The <c>--json</c> option every bench has, checked before measuring.</summary>
    private static Option<FileInfo?> JsonOutput()
    {
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as a JSON array to this file" };
        OptionRules.WritableFile(json);
        return json;
    }

    private static async Task WriteJsonAsync<T>(FileInfo? file, IReadOnlyList<T> results, CancellationToken cancellationToken)
    {
        if (file is null)
            return;
        await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(results, SimulateCommand.JsonOptions), cancellationToken);
        AnsiConsole.MarkupLine($"[grey]results written to {Markup.Escape(file.FullName)}[/]");
    }

    private static List<int>? ParseSizes(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        var sizes = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, out var size) || size < 1 || size > 1_000_000)
                return null;
            sizes.Add(size);
        }

        return sizes.Count > 0 ? sizes : null;
    }
}
