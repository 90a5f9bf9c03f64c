using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Cpns.Actors;
using Cpns.Actors.Server;
using Cpns.Actors.Simulation;
using Cpns.Host.Hosting;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary><c>cpns simulate</c>: the main job — a whole CPNS network in one process, its key flows run and checked.</summary>
public static class SimulateCommand
{
    public const string SimulationDatabase = "simulate.db";
    public const string SimulationSecrets = "simulate-secrets.json";

    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create()
    {
        var gateways = new Option<int>("--gateways") { Description = "Number of PN GWs", DefaultValueFactory = _ => 10 };
        var pnes = new Option<int>("--pnes") { Description = "Number of PNEs, spread over the PN GWs", DefaultValueFactory = _ => 200 };
        var groups = new Option<int>("--groups") { Description = "Number of service groups (half push, half pull)", DefaultValueFactory = _ => 5 };
        var seed = new Option<int>("--seed") { Description = "Seed for the random choices, for a reproducible run", DefaultValueFactory = _ => 1 };
        var membersPerGroup = new Option<int>("--members-per-group")
        {
            Description = "Average members per group (0: about 2·PNEs/groups, at most 400)",
            DefaultValueFactory = _ => 0,
        };
        var both = new Option<int>("--both")
        {
            Description = "How many of the PN GWs are BOTH devices: also PNEs of their own PN, which join groups and send and receive content",
            DefaultValueFactory = _ => 0,
        };
        var legacy = new Option<int>("--legacy")
        {
            Description = "Devices without CPNS features, spread over the PN GWs, each represented by a PNE its PN GW runs for it; they join groups and get content",
            DefaultValueFactory = _ => 0,
        };
        var content = new Option<bool>("--content")
        {
            Description = "After the keys converge, each group's first member sends the group content; every other member must open it",
        };
        var sleeping = new Option<int>("--sleeping")
        {
            Description = "PNEs asleep while the content is sent (with --content): their PN GWs hold it until they wake",
            DefaultValueFactory = _ => 0,
        };
        var churn = new Option<int>("--churn") { Description = "Joins and leaves per group after creation", DefaultValueFactory = _ => 4 };
        var changeRate = new Option<double>("--change-rate")
        {
            Description = "Group changes (creations, then joins and leaves) started per second, evenly spaced; 0 starts each phase's " +
                          "all at once, to measure throughput instead of delivery time",
            DefaultValueFactory = _ => 20,
        };
        var lkhThreshold = new Option<int?>("--lkh-threshold")
        {
            Description = "Push groups reaching more PN GWs than this rekey through a logical key hierarchy " +
                          "(default: cpns.keys.lkh-threshold, 64)",
        };
        var timeout = new Option<int>("--timeout")
        {
            Description = "Seconds to wait for every member to hold its group's current key",
            DefaultValueFactory = _ => 120,
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the summary as JSON to this file" };
        var quiet = new Option<bool>("--quiet") { Description = "No progress display" };
        var ackLog = new Option<FileInfo?>("--ack-log")
        {
            Description = "Append one JSON line per acknowledged registration or group change (each is durable before it is acknowledged)",
        };
        var common = new CommonOptions();

        var command = new Command("simulate",
            "Run a CPNS Server, PN GWs and PNEs in one process: register them, build service groups, churn their " +
            "membership so they rekey, and check every member ends with its group's current key")
        {
            gateways, pnes, groups, seed, membersPerGroup, churn, changeRate, both, legacy, content, sleeping, lkhThreshold, timeout, json, quiet, ackLog,
        };
        common.AddTo(command);
        OptionRules.WritableFile(json);
        OptionRules.WritableFile(ackLog);
        OptionRules.AtLeast(gateways, 1);
        OptionRules.AtLeast(pnes, 1);
        OptionRules.AtLeast(groups, 0);
        OptionRules.AtLeast(membersPerGroup, 0);
        OptionRules.AtLeast(churn, 0);
        OptionRules.AtLeast(both, 0);
        OptionRules.AtLeast(legacy, 0);
        OptionRules.AtLeast(sleeping, 0);
        lkhThreshold.Validators.Add(result =>
        {
            if (result.TryValue<int?>(out var given) && given is < 0 and var value)
                result.AddError($"--lkh-threshold must be at least 0 (got {value})");
        });
        OptionRules.AtLeast(timeout, 1);

        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new SimulationOptions
            {
                Gateways = parse.GetValue(gateways),
                Pnes = parse.GetValue(pnes),
                Groups = parse.GetValue(groups),
                Seed = parse.GetValue(seed),
                MembersPerGroup = parse.GetValue(membersPerGroup),
                ChurnPerGroup = parse.GetValue(churn),
                ChangeRate = parse.GetValue(changeRate),
                BothDevices = parse.GetValue(both),
                LegacyDevices = parse.GetValue(legacy),
                Content = parse.GetValue(content),
                SleepingPnes = parse.GetValue(sleeping),
                ConvergenceTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
            };
            return await RunAsync(options, common.Read(parse), parse.GetValue(lkhThreshold), parse.GetValue(json), parse.GetValue(quiet),
                parse.GetValue(ackLog), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(SimulationOptions options, NodeOptions node, int? lkhThreshold, FileInfo? json, bool quiet,
        FileInfo? ackLog, CancellationToken cancellationToken)
    {
        if (options.Validate() is { } problem)
        {
            Console.Error.WriteLine($"cpns simulate: {problem}");
            return 1;
        }

        // Every run studies a fresh network: on SQLite its own file (simulate.db, kept afterwards for inspection,
        // never the cpns.db of real nodes), elsewhere its own server id, so earlier runs' groups never collide.
        var overrides = lkhThreshold is { } threshold ? $"cpns.keys.lkh-threshold = {threshold}\n" : "";
        if (node.Storage == Actors.Persistence.StorageKind.Sqlite)
        {
            node = node with { SqliteFileName = SimulationDatabase };
            Directory.CreateDirectory(node.DataDirectory);
            foreach (var suffix in new[] { "", "-wal", "-shm" })
                File.Delete(Path.Combine(node.DataDirectory, SimulationDatabase + suffix));
        }
        else
        {
            overrides += $"cpns.server-id = \"sim-{DateTime.UtcNow:yyyyMMddHHmmss}\"";
        }

        var config = HostConfiguration.Build(node, overrides, "server", "gateway");
        var settings = CpnsSettings.From(config);
        var secrets = ServerSecrets.Generate(settings.ServerId);
        // Kept beside the run's database, so `cpns state` can open the key epochs it journaled.
        secrets.Save(Path.Combine(node.DataDirectory, SimulationSecrets));
        using var acknowledgements = ackLog is null ? null : new AcknowledgementLog(ackLog.FullName);
        using var host = AkkaHostBuilder.Build(config);
        await host.StartAsync(cancellationToken);
        var system = AkkaHostBuilder.ActorSystemOf(host);
        AnsiConsole.MarkupLine($"[grey]cpns simulate: {options.Gateways} PN GWs, {options.Pnes} PNEs, {options.Groups} groups, " +
                               $"seed {options.Seed}, state in {Markup.Escape(StorageDescription(node))}[/]");

        SimulationResult result;
        try
        {
            var runner = new SimulationRunner(system, settings, secrets, acknowledgements is null ? null : acknowledgements.Write);
            result = quiet || !AnsiConsole.Profile.Capabilities.Interactive
                ? await runner.RunAsync(options, new PhaseLogger(), cancellationToken)
                : await WithProgressAsync(progress => runner.RunAsync(options, progress, cancellationToken));
        }
        catch (SimulationStalledException stalled)
        {
            Console.Error.WriteLine($"cpns simulate: stopped while {Describe(stalled.Phase)}: {stalled.InnerException!.Message} " +
                                    $"({stalled.InnerException.GetType().Name}); state so far is in {StorageDescription(node)}");
            return 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }

        var peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
        AnsiConsole.Write(SummaryTable(result, peakMb));
        if (node.Storage == Actors.Persistence.StorageKind.Postgres)
            AnsiConsole.MarkupLine($"[grey]this run's state is under server id {Markup.Escape(settings.ServerId)}: " +
                                   $"cpns state --db postgres --connection ... --server-id {Markup.Escape(settings.ServerId)}[/]");
        if (json is not null)
        {
            await File.WriteAllTextAsync(json.FullName, JsonSerializer.Serialize(result, JsonOptions), CancellationToken.None);
            AnsiConsole.MarkupLine($"[grey]summary written to {Markup.Escape(json.FullName)}[/]");
        }

        if (!result.AllContentOpened)
        {
            AnsiConsole.MarkupLine($"[red]content: {result.ContentAccepted} of {result.ContentSent} sends accepted, " +
                                   $"{result.ContentOpened} of {result.ContentDue} copies opened[/]");
            return 1;
        }

        if (result.Members > 0 && result.AllMembersCurrent)
            return 0;
        if (result.Members == 0 && options.Groups == 0)
            return 0;
        AnsiConsole.MarkupLine($"[red]{result.Members - result.MembersWithCurrentKey} of {result.Members} members do not hold their group's current key[/]");
        return 1;
    }

    private static string StorageDescription(NodeOptions node) => node.Storage switch
    {
        Actors.Persistence.StorageKind.Sqlite => Path.Combine(node.DataDirectory, node.SqliteFileName),
        Actors.Persistence.StorageKind.Postgres => "PostgreSQL",
        _ => "memory (not kept)",
    };

    private static Table SummaryTable(SimulationResult result, double peakMb)
    {
        var table = new Table().Title("CPNS simulation").AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("PN GWs registered", result.Gateways.ToString());
        Row("PNEs registered", result.Pnes.ToString());
        if (result.BothDevices > 0)
            Row("  of them BOTH devices (PN GW and PNE)", result.BothDevices.ToString());
        if (result.LegacyDevices > 0)
            Row("devices without CPNS, represented by PN GWs", result.LegacyDevices.ToString());
        Row("service groups", result.Groups.ToString());
        Row("group changes started per second", result.ChangeRate > 0 ? result.ChangeRate.ToString("0.##") : "all at once");
        Row("members (group memberships)", result.Members.ToString());
        Row("members holding the current epoch", result.MembersWithCurrentKey.ToString());
        Row("keys delivered by push", result.KeysDeliveredPush.ToString());
        Row("keys delivered by pull", result.KeysDeliveredPull.ToString());
        Row("epochs", result.Epochs.ToString());
        if (result.Delivery is { } delivery)
        {
            Row("groups keyed through LKH", delivery.LkhGroups.ToString());
            Row("keys wrapped for one PN GW (with LKH path)", $"{delivery.FlatDeliveries} ({delivery.PathsSent})");
            Row("LKH rekey broadcasts (copies, bytes each)", delivery.Broadcasts == 0 ? "0"
                : $"{delivery.Broadcasts} ({delivery.BroadcastCopies}, {delivery.BroadcastBytes / delivery.Broadcasts})");
        }

        Row("key delivery p50 (ms)", result.KeyDeliveryP50Ms.ToString("0.###"));
        Row("key delivery p99 (ms)", result.KeyDeliveryP99Ms.ToString("0.###"));
        Row("  push p50 / p99 / max (ms)", $"{result.PushP50Ms:0.#} / {result.PushP99Ms:0.#} / {result.PushMaxMs:0.#}");
        Row("    new groups' first keys", result.FirstKeyPush.ToString());
        Row("    rekeys", result.RekeyPush.ToString());
        Row("  pull p50 / p99 / max (ms)", $"{result.PullP50Ms:0.#} / {result.PullP99Ms:0.#} / {result.PullMaxMs:0.#}");
        Row("    new groups' first keys", result.FirstKeyPull.ToString());
        Row("    rekeys", result.RekeyPull.ToString());
        if (result.ContentSent > 0)
        {
            Row("content sent / accepted (one per group)", $"{result.ContentSent} / {result.ContentAccepted}");
            Row("content copies due / opened" + (result.SleepingPnes > 0 ? $" ({result.SleepingPnes} PNEs asleep while sent)" : ""),
                $"{result.ContentDue} / {result.ContentOpened}");
        }

        Row("PNE registrations per second", result.PneRegistrationsPerSecond.ToString("0.#"));
        Row("retries / busy answers / envelopes refused", $"{result.Retries} / {result.BusyAnswers} / {result.EnvelopesRefused}");
        foreach (var (function, count) in result.RetriesByFunction)
            Row($"  retries: {function}", count.ToString());
        foreach (var (function, count) in result.BusyAnswersByFunction)
            Row($"  busy answers: {function}", count.ToString());
        foreach (var (phase, seconds) in result.PhaseSeconds)
            Row($"  phase {phase} (s)", seconds.ToString("0.###"));
        Row("wall time (s)", result.WallSeconds.ToString("0.###"));
        if (result.Crypto is { } crypto && result.CryptoUnitCosts is { } unit)
        {
            Row("signatures / verifications / agreements / AEAD",
                $"{crypto.Signatures} / {crypto.Verifications} / {crypto.Agreements} / {crypto.Aead}");
            Row("  unit cost here (µs)", $"{unit.SignMicros:0.#} / {unit.VerifyMicros:0.#} / {unit.AgreeMicros:0.#} / {unit.AeadMicros:0.#}");
            Row($"crypto floor on {Environment.ProcessorCount} cores (s); wall ÷ floor", $"{result.CryptoFloorSeconds:0.###}; {result.WallOverFloor:0.##}");
        }

        Row("memory per PNE (bytes, working set growth)", result.BytesPerPne.ToString("0"));
        Row("peak memory (MB)", peakMb.ToString("0"));
        return table;
    }

    private static async Task<SimulationResult> WithProgressAsync(Func<IProgress<SimulationProgress>, Task<SimulationResult>> run)
    {
        SimulationResult? result = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(),
                new SpinnerColumn())
            .StartAsync(async context =>
            {
                var latest = new LatestProgress();
                var tasks = new Dictionary<SimulationPhase, ProgressTask>();
                var work = run(latest);
                while (!work.IsCompleted)
                {
                    foreach (var (phase, done, total) in latest.Snapshot())
                    {
                        if (phase == SimulationPhase.Done)
                            continue;
                        if (!tasks.TryGetValue(phase, out var task))
                            tasks[phase] = task = context.AddTask(Describe(phase), maxValue: Math.Max(1, total));
                        task.MaxValue = Math.Max(1, total);
                        task.Value = done;
                    }

                    await Task.WhenAny(work, Task.Delay(100));
                }

                foreach (var task in tasks.Values)
                    task.Value = task.MaxValue;
                result = await work;
            });
        return result!;
    }

    private static string Describe(SimulationPhase phase) => phase switch
    {
        SimulationPhase.StartingServer => "starting the CPNS Server",
        SimulationPhase.RegisteringGateways => "registering PN GWs",
        SimulationPhase.RegisteringPnes => "registering PNEs",
        SimulationPhase.CreatingGroups => "creating service groups",
        SimulationPhase.Churning => "membership churn (rekeys)",
        SimulationPhase.Converging => "members holding the current key",
        SimulationPhase.Verifying => "checking key check values",
        SimulationPhase.DeliveringContent => "members opening group content",
        _ => phase.ToString(),
    };

    /// <summary>Keeps the latest report of each phase; the display reads it on its own schedule.</summary>
    private sealed class LatestProgress : IProgress<SimulationProgress>
    {
        private readonly Dictionary<SimulationPhase, SimulationProgress> _latest = new();

        public void Report(SimulationProgress value)
        {
            lock (_latest)
            {
                if (!_latest.TryGetValue(value.Phase, out var known) || known.Done <= value.Done || known.Total != value.Total)
                    _latest[value.Phase] = value;
            }
        }

        public List<SimulationProgress> Snapshot()
        {
            lock (_latest)
                return _latest.Values.ToList();
        }
    }

    /// <summary>For a non-interactive console: one line as each phase completes.</summary>
    private sealed class PhaseLogger : IProgress<SimulationProgress>
    {
        private readonly HashSet<SimulationPhase> _reported = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public void Report(SimulationProgress value)
        {
            if (value.Done < value.Total || value.Phase == SimulationPhase.Done)
                return;
            lock (_reported)
            {
                if (_reported.Add(value.Phase))
                    Console.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:0.0}s] {Describe(value.Phase)}: {value.Done}/{value.Total}");
            }
        }
    }
}

/// <summary>Acknowledgements as JSON lines, each flushed to the file as it happens (a crash loses none written).</summary>
public sealed class AcknowledgementLog : IDisposable
{
    private readonly StreamWriter _writer;

    public AcknowledgementLog(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public void Write(Acknowledgement acknowledgement)
    {
        var line = JsonSerializer.Serialize(acknowledgement, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        lock (_writer)
            _writer.WriteLine(line);
    }

    public void Dispose()
    {
        lock (_writer)
            _writer.Dispose();
    }
}
