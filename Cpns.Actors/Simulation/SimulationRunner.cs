using Cpns.Actors.Common;
using Cpns.Actors.Local;
using System.Diagnostics;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors.Simulation;

/// <summary>
/// The main job: one CPNS Server, PN GWs and PNEs in one actor system; service groups with random members
/// (half push, half pull), then membership churn so groups rekey; then it waits until every member holds its
/// group's current key and checks each one against the server's key check value.
/// </summary>
public sealed class SimulationRunner(ActorSystem system, CpnsSettings settings, ServerSecrets secrets,
    Action<Acknowledgement>? acknowledged = null)
{
    public static string GatewayId(int index) => $"g{index:D4}";

    public static string PneId(int index) => $"p{index:D5}";

    public static string LegacyId(int index) => $"legacy-{index:D5}";

    public async Task<SimulationResult> RunAsync(SimulationOptions options, IProgress<SimulationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (options.Validate() is { } problem)
            throw new ArgumentException(problem, nameof(options));
        using var counters = new RunCounters();
        var cryptoBefore = CryptoOperations.Now();
        var wall = Stopwatch.StartNew();
        var random = new Random(options.Seed);
        var collector = system.ActorOf(DeliveryCollector.Props(acknowledged), $"sim-collector-{Guid.NewGuid():N}");
        var phases = new PhaseTracker(progress);
        progress = phases;
        try
        {
            progress?.Report(new SimulationProgress(SimulationPhase.StartingServer, 0, 1));
            var server = await Deployment.EndpointsOf(Deployment.StartServer(system, secrets, settings), options.AskTimeout);
            // The simulation is its own operator: every device it starts is provisioned for enrolment first.
            EntityKind KindOf(int gateway) => gateway < options.BothDevices ? EntityKind.Both : EntityKind.PnGateway;
            var tokens = await Deployment.ProvisionAsync(server.Registry,
                Enumerable.Range(0, options.Gateways).Select(g => (GatewayId(g), KindOf(g)))
                    .Concat(Enumerable.Range(0, options.Pnes).Select(p => (PneId(p), EntityKind.Pne)))
                    .Concat(Enumerable.Range(0, options.LegacyDevices).Select(l => (LegacyId(l), EntityKind.Pne))), options.AskTimeout);
            progress?.Report(new SimulationProgress(SimulationPhase.StartingServer, 1, 1));

            var workingSetBefore = Environment.WorkingSet;
            var gateways = new List<IActorRef>(options.Gateways);
            for (var g = 0; g < options.Gateways; g++)
                gateways.Add(Deployment.StartGateway(system, EntityIdentity.Generate(GatewayId(g), KindOf(g)),
                    secrets.TrustAnchor, server.Registry, settings, enrolmentToken: tokens[GatewayId(g)]));
            await WaitForAsync(options, SimulationPhase.RegisteringGateways, options.Gateways, progress, cancellationToken,
                async () => (await collector.Ask<DeliveryCollector.Registered>(DeliveryCollector.GetRegistered.Instance,
                    options.AskTimeout)).Gateways);

            // The PNEs start registering as they are made: the phase's time includes making them (their keys, their actors).
            progress?.Report(new SimulationProgress(SimulationPhase.RegisteringPnes, 0, options.Pnes + options.LegacyDevices));
            var pnes = new Dictionary<string, IActorRef>(options.Pnes);
            var gatewayOf = new Dictionary<string, IActorRef>(options.Pnes);
            for (var p = 0; p < options.Pnes; p++)
            {
                var id = PneId(p);
                gatewayOf[id] = gateways[p % gateways.Count];
                pnes[id] = Deployment.StartPne(system, EntityIdentity.Generate(id, EntityKind.Pne), secrets.TrustAnchor,
                    gateways[p % gateways.Count], settings, enrolmentToken: tokens[id]);
            }

            // Devices without CPNS features, each taken in by a PN GW that runs a PNE for it; the run reads what reached
            // the device itself, not its representative.
            var inboxes = new Dictionary<string, IActorRef>();
            for (var l = 0; l < options.LegacyDevices; l++)
            {
                var id = LegacyId(l);
                var device = system.ActorOf(LegacyDeviceModel.Props(id), $"sim-device-{id}-{Guid.NewGuid():N}");
                var gateway = gateways[l % gateways.Count];
                var adopted = await gateway.Ask<object>(new AdoptLegacyDevice(EntityIdentity.Generate(id, EntityKind.Pne), "screen",
                    new PnTechnology("hdmi-cec", SecurityLevel.High), tokens[id], device), options.AskTimeout, cancellationToken);
                pnes[id] = adopted is LegacyDeviceAdopted { Representative: var representative }
                    ? representative
                    : throw new InvalidOperationException($"{id}: {(adopted as LegacyDeviceRefused)?.Reason ?? adopted.ToString()}");
                inboxes[id] = device;
            }

            await WaitForAsync(options, SimulationPhase.RegisteringPnes, options.Pnes + options.LegacyDevices, progress, cancellationToken,
                async () => (await collector.Ask<DeliveryCollector.Registered>(DeliveryCollector.GetRegistered.Instance,
                    options.AskTimeout)).Pnes);

            var bytesPerPne = options.Pnes == 0 ? 0 : Math.Max(0, Environment.WorkingSet - workingSetBefore) / (double)options.Pnes;
            // A BOTH device is a group member like a PNE: it holds the key and sends and receives content.
            var devices = new Dictionary<string, IActorRef>(pnes);
            for (var g = 0; g < options.BothDevices; g++)
                devices[GatewayId(g)] = gateways[g];
            var memberIds = devices.Keys.Order(StringComparer.Ordinal).ToArray();
            var plan = Plan(options, memberIds, random);
            var finalState = new Dictionary<string, (long Epoch, IReadOnlyList<string> Members)>();

            await RunAllAsync(options, SimulationPhase.CreatingGroups, plan.Select(g => (g.GroupId, (ICpnsMessage)g.Create)).ToList(),
                options.ChangeRate, server.Smf, finalState, progress, cancellationToken);
            // Round by round, so that one group's changes are spread over the phase like everyone else's.
            var churn = Enumerable.Range(0, plan.Count == 0 ? 0 : plan.Max(g => g.Churn.Count))
                .SelectMany(round => plan.Where(g => round < g.Churn.Count).Select(g => (g.GroupId, g.Churn[round])))
                .ToList();
            await RunAllAsync(options, SimulationPhase.Churning, churn, options.ChangeRate, server.Smf, finalState, progress, cancellationToken);

            var outstanding = await collector.Ask<int>(new DeliveryCollector.Expect(finalState), options.AskTimeout);
            var totalMembers = finalState.Values.Sum(s => s.Members.Count);
            var deadline = Stopwatch.StartNew();
            while (outstanding > 0 && deadline.Elapsed < options.ConvergenceTimeout)
            {
                progress?.Report(new SimulationProgress(SimulationPhase.Converging, totalMembers - outstanding, totalMembers));
                await Task.Delay(options.PollInterval, cancellationToken);
                outstanding = await collector.Ask<int>(DeliveryCollector.GetOutstanding.Instance, options.AskTimeout);
            }

            progress?.Report(new SimulationProgress(SimulationPhase.Converging, totalMembers - outstanding, totalMembers));

            var current = await VerifyAsync(options, server, devices, finalState, progress);
            foreach (var (id, device) in devices)
                inboxes.TryAdd(id, device);
            var content = options.Content
                ? await DeliverContentAsync(options, devices, inboxes, gatewayOf, finalState, progress, cancellationToken)
                : new ContentOutcome(0, 0, 0, 0);
            var stats = await collector.Ask<DeliveryCollector.Stats>(DeliveryCollector.GetStats.Instance, options.AskTimeout);
            var delivery = await server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, options.AskTimeout);
            double[] Sorted(Func<DeliveryCollector.TimedDelivery, bool> which) =>
                stats.Deliveries.Where(which).Select(d => d.Ms).Order().ToArray();
            var latencies = Sorted(_ => true);
            var push = Sorted(d => d.Mode == DeliveryMode.Push);
            var pull = Sorted(d => d.Mode == DeliveryMode.Pull);
            progress?.Report(new SimulationProgress(SimulationPhase.Done, 1, 1));
            var crypto = CryptoOperations.Now() - cryptoBefore;
            wall.Stop();
            // Measured now, not before the run: at start-up the JIT has not yet compiled the crypto code at full speed.
            var unitCosts = CryptoOperations.Measure();
            var floor = unitCosts.FloorSeconds(crypto, Environment.ProcessorCount);
            var phaseSeconds = phases.Seconds();
            return new SimulationResult
            {
                PushP50Ms = Math.Round(Percentile(push, 0.50), 3),
                PushP99Ms = Math.Round(Percentile(push, 0.99), 3),
                PushMaxMs = Math.Round(push.Length == 0 ? 0 : push[^1], 3),
                PullP50Ms = Math.Round(Percentile(pull, 0.50), 3),
                PullP99Ms = Math.Round(Percentile(pull, 0.99), 3),
                PullMaxMs = Math.Round(pull.Length == 0 ? 0 : pull[^1], 3),
                FirstKeyPush = LatencySummary.Of(Sorted(d => d is { FirstKey: true, Mode: DeliveryMode.Push })),
                FirstKeyPull = LatencySummary.Of(Sorted(d => d is { FirstKey: true, Mode: DeliveryMode.Pull })),
                RekeyPush = LatencySummary.Of(Sorted(d => d is { FirstKey: false, Mode: DeliveryMode.Push })),
                RekeyPull = LatencySummary.Of(Sorted(d => d is { FirstKey: false, Mode: DeliveryMode.Pull })),
                PhaseSeconds = phaseSeconds,
                PneRegistrationsPerSecond = phaseSeconds.TryGetValue(nameof(SimulationPhase.RegisteringPnes), out var registering) && registering > 0
                    ? Math.Round(options.Pnes / registering, 1)
                    : 0,
                Retries = counters.Retries,
                BusyAnswers = counters.BusyAnswers,
                RetriesByFunction = counters.ByFunction("retries"),
                BusyAnswersByFunction = counters.ByFunction("busy"),
                EnvelopesRefused = counters.EnvelopesRefused,
                BytesPerPne = Math.Round(bytesPerPne),
                Crypto = crypto,
                CryptoUnitCosts = unitCosts,
                CryptoFloorSeconds = Math.Round(floor, 3),
                WallOverFloor = floor > 0 ? Math.Round(wall.Elapsed.TotalSeconds / floor, 2) : 0,
                Gateways = options.Gateways,
                Pnes = options.Pnes,
                BothDevices = options.BothDevices,
                LegacyDevices = options.LegacyDevices,
                SleepingPnes = options.SleepingPnes,
                ContentSent = content.Sent,
                ContentAccepted = content.Accepted,
                ContentDue = content.Due,
                ContentOpened = content.Opened,
                Groups = options.Groups,
                ChangeRate = options.ChangeRate,
                Members = totalMembers,
                MembersWithCurrentKey = current,
                KeysDeliveredPush = stats.PushInstalls,
                KeysDeliveredPull = stats.PullInstalls,
                Epochs = finalState.Values.Sum(s => s.Epoch),
                KeyDeliveryP50Ms = Math.Round(Percentile(latencies, 0.50), 3),
                KeyDeliveryP99Ms = Math.Round(Percentile(latencies, 0.99), 3),
                WallSeconds = Math.Round(wall.Elapsed.TotalSeconds, 3),
                Delivery = delivery,
            };
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new SimulationStalledException(phases.Current, e);
        }
        finally
        {
            system.Stop(collector);
        }
    }

    /// <summary>Remembers the phase last reported, so a failure can say where the run stopped, and how long each phase took.</summary>
    private sealed class PhaseTracker(IProgress<SimulationProgress>? inner) : IProgress<SimulationProgress>
    {
        private readonly List<(SimulationPhase Phase, long StartedAt)> _started = [(SimulationPhase.StartingServer, Stopwatch.GetTimestamp())];

        public SimulationPhase Current { get; private set; } = SimulationPhase.StartingServer;

        public void Report(SimulationProgress value)
        {
            if (value.Phase != Current)
                _started.Add((value.Phase, Stopwatch.GetTimestamp()));
            Current = value.Phase;
            inner?.Report(value);
        }

        public IReadOnlyDictionary<string, double> Seconds()
        {
            var seconds = new Dictionary<string, double>();
            for (var i = 0; i < _started.Count; i++)
            {
                if (_started[i].Phase == SimulationPhase.Done)
                    continue;
                var end = i + 1 < _started.Count ? _started[i + 1].StartedAt : Stopwatch.GetTimestamp();
                seconds[_started[i].Phase.ToString()] = Math.Round(Stopwatch.GetElapsedTime(_started[i].StartedAt, end).TotalSeconds, 3);
            }

            return seconds;
        }
    }

    /// <summary>The enabler's retry, busy and refusal counters (process-wide instruments) over one run.</summary>
    private sealed class RunCounters : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private long _retries;
        private long _busy;
        private long _refused;
        private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Kind, string Function), long> _byFunction = new();

        public RunCounters()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Common.CpnsMetrics.MeterName &&
                    instrument.Name is "cpns.retries" or "cpns.busy_answers" or "cpns.envelopes.refused")
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                switch (instrument.Name)
                {
                    case "cpns.retries":
                        Interlocked.Add(ref _retries, value);
                        Count("retries", tags, value);
                        break;
                    case "cpns.busy_answers":
                        Interlocked.Add(ref _busy, value);
                        Count("busy", tags, value);
                        break;
                    default:
                        Interlocked.Add(ref _refused, value);
                        break;
                }
            });
            _listener.Start();
        }

        private void Count(string kind, ReadOnlySpan<KeyValuePair<string, object?>> tags, long value)
        {
            foreach (var (name, tag) in tags)
            {
                if (name == "function" && tag is string function)
                    _byFunction.AddOrUpdate((kind, function), value, (_, total) => total + value);
            }
        }

        /// <summary>Retries or busy answers (<paramref name="kind"/>: "retries", "busy") by the function that counted them.</summary>
        public IReadOnlyDictionary<string, long> ByFunction(string kind) => _byFunction
            .Where(kv => kv.Key.Kind == kind)
            .OrderByDescending(kv => kv.Value)
            .ToDictionary(kv => kv.Key.Function, kv => kv.Value, StringComparer.Ordinal);

        public long Retries => Interlocked.Read(ref _retries);
        public long BusyAnswers => Interlocked.Read(ref _busy);
        public long EnvelopesRefused => Interlocked.Read(ref _refused);

        public void Dispose() => _listener.Dispose();
    }

    private sealed record GroupPlan(string GroupId, CreateGroup Create, IReadOnlyList<ICpnsMessage> Churn);

    /// <summary>Which groups, with which members and mode, and which joins and leaves follow: all from the seed.</summary>
    private static List<GroupPlan> Plan(SimulationOptions options, string[] pneIds, Random random)
    {
        var plans = new List<GroupPlan>();
        var average = options.EffectiveMembersPerGroup;
        for (var g = 0; g < options.Groups; g++)
        {
            var groupId = $"grp-{g:D4}";
            var size = Math.Clamp(random.Next(Math.Max(1, average / 2), average + average / 2 + 1), 1, pneIds.Length);
            var members = Sample(pneIds, size, random).ToList();
            var mode = g % 2 == 0 ? DeliveryMode.Push : DeliveryMode.Pull;
            var create = new CreateGroup(groupId, members[0], mode, members.ToList());
            var churn = new List<ICpnsMessage>();
            var current = new HashSet<string>(members, StringComparer.Ordinal);
            for (var c = 0; c < options.ChurnPerGroup; c++)
            {
                var join = c % 2 == 0 || current.Count <= 1;
                if (join && current.Count < pneIds.Length)
                {
                    string candidate;
                    do candidate = pneIds[random.Next(pneIds.Length)];
                    while (current.Contains(candidate));
                    current.Add(candidate);
                    churn.Add(new AddMember(groupId, members[0], candidate));
                }
                else if (current.Count > 1)
                {
                    var leaving = current.Where(m => m != members[0]).OrderBy(m => m, StringComparer.Ordinal)
                        .ElementAt(random.Next(current.Count - 1));
                    current.Remove(leaving);
                    churn.Add(new RemoveMember(groupId, members[0], leaving));
                }
            }

            plans.Add(new GroupPlan(groupId, create, churn));
        }

        return plans;
    }

    private static IEnumerable<string> Sample(string[] ids, int count, Random random)
    {
        var chosen = new HashSet<int>();
        while (chosen.Count < count)
            chosen.Add(random.Next(ids.Length));
        return chosen.Order().Select(i => ids[i]);
    }

    private static async Task WaitForAsync(SimulationOptions options, SimulationPhase phase, int expected, IProgress<SimulationProgress>? progress,
        CancellationToken cancellationToken, Func<Task<int>> count)
    {
        // A count that does not come back in time (the process is busy with the phase itself) is no progress, not a failure:
        // only two minutes without progress end the run.
        async Task<int?> CountNow()
        {
            try
            {
                return await count();
            }
            catch (AskTimeoutException)
            {
                return null;
            }
        }

        var done = await CountNow() ?? 0;
        var lastChange = Stopwatch.StartNew();
        while (done < expected)
        {
            progress?.Report(new SimulationProgress(phase, done, expected));
            await Task.Delay(options.PollInterval, cancellationToken);
            var now = await CountNow() ?? done;
            if (now != done)
                lastChange.Restart();
            else if (lastChange.Elapsed > options.StallTimeout)
                throw new TimeoutException($"{phase}: stuck at {done} of {expected} for {options.StallTimeout.TotalSeconds:0} s");
            done = now;
        }

        progress?.Report(new SimulationProgress(phase, done, expected));
    }

    /// <summary>
    /// Sends the commands at the given rate (0: all at once) and awaits every answer. A group's changes go one after the
    /// other, each once the one before it was answered: a change turned away busy and sent again later must not be
    /// overtaken by the next change of its group (a removal of a member whose joining is still waiting).
    /// </summary>
    internal async Task RunAllAsync(SimulationOptions options, SimulationPhase phase, IReadOnlyList<(string GroupId, ICpnsMessage Command)> commands,
        double changesPerSecond, IActorRef smf, Dictionary<string, (long Epoch, IReadOnlyList<string> Members)> finalState,
        IProgress<SimulationProgress>? progress, CancellationToken cancellationToken)
    {
        var done = 0;
        progress?.Report(new SimulationProgress(phase, 0, commands.Count));
        var started = Stopwatch.StartNew();
        var replies = new List<Task<(string GroupId, object Reply)>>(commands.Count);
        var lastOfGroup = new Dictionary<string, Task<(string GroupId, object Reply)>>(StringComparer.Ordinal);
        for (var i = 0; i < commands.Count; i++)
        {
            if (changesPerSecond > 0 && TimeSpan.FromSeconds(i / changesPerSecond) - started.Elapsed is { Ticks: > 0 } wait)
                await Task.Delay(wait, cancellationToken);
            var command = commands[i];
            var reply = Run(command, lastOfGroup.GetValueOrDefault(command.GroupId));
            lastOfGroup[command.GroupId] = reply;
            replies.Add(reply);
        }

        async Task<(string GroupId, object Reply)> Run((string GroupId, ICpnsMessage Command) c, Task<(string, object)>? before)
        {
            if (before is not null)
                await before;
            var reply = await smf.Ask<object>(new LocalRequest(c.Command), options.StallTimeout, cancellationToken);
            // A server behind on its deliveries takes no new change for a while: the change goes again when it says.
            while (reply is GroupRejected { Error: GroupError.Busy } busy)
            {
                await Task.Delay(Backpressure.WaitFor(busy.RetryAfterMs), cancellationToken);
                reply = await smf.Ask<object>(new LocalRequest(c.Command), options.StallTimeout, cancellationToken);
            }

            if (reply is GroupAccepted ack)
                acknowledged?.Invoke(new Acknowledgement("group", ack.GroupId, null, ack.Epoch, ack.Members));
            progress?.Report(new SimulationProgress(phase, Interlocked.Increment(ref done), commands.Count));
            return (c.GroupId, Reply: reply);
        }

        foreach (var (groupId, reply) in await Task.WhenAll(replies))
        {
            switch (reply)
            {
                case GroupAccepted accepted:
                    if (!finalState.TryGetValue(groupId, out var known) || known.Epoch < accepted.Epoch)
                        finalState[groupId] = (accepted.Epoch, accepted.Members);
                    break;
                case GroupRejected rejected:
                    throw new InvalidOperationException($"{phase}: {groupId} refused: {rejected.Error} ({rejected.Detail})");
            }
        }
    }

    /// <summary>Counts the members whose current key matches the server's current epoch and key check value.</summary>
    private static async Task<int> VerifyAsync(SimulationOptions options, ServerEndpoints server, IReadOnlyDictionary<string, IActorRef> pnes,
        Dictionary<string, (long Epoch, IReadOnlyList<string> Members)> finalState, IProgress<SimulationProgress>? progress)
    {
        var total = finalState.Values.Sum(s => s.Members.Count);
        var checkedCount = 0;
        var current = 0;
        foreach (var (groupId, (epoch, members)) in finalState)
        {
            var serverState = await server.Cskmf.Ask<HeldGroupKey>(new GetKeyState(groupId), options.AskTimeout);
            if (serverState.CurrentEpoch != epoch)
                continue;
            foreach (var chunk in members.Chunk(2000))
            {
                var states = await Task.WhenAll(chunk.Select(m => pnes[m].Ask<HeldGroupKey>(new GetKeyState(groupId), options.AskTimeout)));
                current += states.Count(s => s.CurrentEpoch == epoch && s.KeyCheck == serverState.KeyCheck);
                checkedCount += chunk.Length;
                progress?.Report(new SimulationProgress(SimulationPhase.Verifying, checkedCount, total));
            }
        }

        return current;
    }

    private sealed record ContentOutcome(int Sent, int Accepted, int Due, int Opened);

    /// <summary>
    /// Every group's first member sends the group one piece of content while some PNEs sleep (their PN GWs hold it), then
    /// the sleepers wake; it waits until every other member has opened its copy, or until the convergence timeout.
    /// </summary>
    private static async Task<ContentOutcome> DeliverContentAsync(SimulationOptions options, IReadOnlyDictionary<string, IActorRef> devices,
        IReadOnlyDictionary<string, IActorRef> inboxes, IReadOnlyDictionary<string, IActorRef> gatewayOf, Dictionary<string, (long Epoch, IReadOnlyList<string> Members)> finalState,
        IProgress<SimulationProgress>? progress, CancellationToken cancellationToken)
    {
        var pneIds = gatewayOf.Keys.Order(StringComparer.Ordinal).ToArray();
        var step = Math.Max(1, pneIds.Length / Math.Max(1, options.SleepingPnes));
        var sleepers = pneIds.Where((_, i) => i % step == 0).Take(options.SleepingPnes).ToList();
        foreach (var id in sleepers)
            devices[id].Tell(new Sleep(id));
        // Content goes out once every sleeper's PN GW knows it sleeps, so the PN GW holds the sleeper's copy until it wakes.
        var awake = sleepers.ToHashSet(StringComparer.Ordinal);
        var sleepDeadline = Stopwatch.StartNew();
        while (awake.Count > 0)
        {
            if (sleepDeadline.Elapsed > options.ConvergenceTimeout)
                throw new TimeoutException($"{awake.Count} PN GWs did not hear their PNEs go to sleep");
            var reach = await Task.WhenAll(awake.Select(id => gatewayOf[id].Ask<Reachability>(new GetReachability(id), options.AskTimeout)));
            awake.ExceptWith(reach.Where(r => r.Sleeping).Select(r => r.DeviceId));
            if (awake.Count > 0)
                await Task.Delay(options.PollInterval, cancellationToken);
        }

        var groups = finalState.Where(kv => kv.Value.Members.Count > 0).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var due = groups.Sum(g => g.Value.Members.Count - 1);
        progress?.Report(new SimulationProgress(SimulationPhase.DeliveringContent, 0, due));
        var answers = await Task.WhenAll(groups.Select(g => devices[g.Value.Members[0]].Ask<object>(
            new SendContent($"sim-{g.Key}", "sim-service", g.Key, Octets.Own(System.Text.Encoding.UTF8.GetBytes($"hello {g.Key}"))),
            options.AskTimeout, cancellationToken)));
        var accepted = groups.Where((_, i) => answers[i] is ContentAccepted).ToList();
        foreach (var id in sleepers)
            devices[id].Tell(new Wake(id));

        var waiting = accepted.SelectMany(g => g.Value.Members.Skip(1).Select(m => (Member: m, DeliveryId: $"sim-{g.Key}"))).ToHashSet();
        var deadline = Stopwatch.StartNew();
        while (waiting.Count > 0 && deadline.Elapsed < options.ConvergenceTimeout)
        {
            foreach (var byMember in waiting.GroupBy(w => w.Member).Chunk(2000))
            {
                var received = await Task.WhenAll(byMember.Select(m =>
                    inboxes[m.Key].Ask<ReceivedContent>(new GetReceivedContent(m.Key), options.AskTimeout, cancellationToken)));
                foreach (var inbox in received)
                foreach (var item in inbox.Items.Where(i => i.Error is null))
                    waiting.Remove((inbox.DeviceId, item.DeliveryId));
            }

            progress?.Report(new SimulationProgress(SimulationPhase.DeliveringContent, due - waiting.Count, due));
            if (waiting.Count > 0)
                await Task.Delay(options.PollInterval, cancellationToken);
        }

        var dueAccepted = accepted.Sum(g => g.Value.Members.Count - 1);
        return new ContentOutcome(groups.Count, accepted.Count, due, dueAccepted - waiting.Count);
    }

    internal static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
            return 0;
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }
}
