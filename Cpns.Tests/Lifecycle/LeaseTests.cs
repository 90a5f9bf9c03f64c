using Cpns.Actors.Local;
using Akka.Actor;
using Akka.TestKit;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>Registration leases, with time driven by the test scheduler: clamping, renewal, expiry, deregistration.</summary>
public sealed class LeaseTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
    cpns.registration.batch-window = 0s
    cpns.registration.cleaner-interval = 1s
    cpns.keys.pn-fanout-coalesce = 0s
    """)
{
    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private Task<Lease> LeaseAsync(string id) => Server.Registry.Ask<Lease>(new GetLease(id), Timeout);

    private async Task<IReadOnlyList<string>> RegisteredAsync()
    {
        var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        return inventory.Gateways.Concat(inventory.Pnes).Select(e => e.DeviceId).Order().ToList();
    }

    /// <summary>Moves time on in steps; after each step waits until whatever it set off has settled.</summary>
    private async Task AdvanceAsync(TimeSpan total)
    {
        for (var moved = TimeSpan.Zero; moved < total; moved += TimeSpan.FromSeconds(1))
        {
            Clock.Advance(TimeSpan.FromSeconds(1));
            await SettledAsync();
        }
    }

    private async Task StartAsync(Dictionary<string, (string Gateway, int Lifetime)> pnes, Dictionary<string, int> gateways)
    {
        await StartServerAsync();
        foreach (var (id, lifetime) in gateways)
            StartGateway(id, lifetimeSeconds: lifetime);
        await AwaitRegisteredAsync(Gateways.Values);
        foreach (var (id, (gateway, lifetime)) in pnes)
            StartPne(id, gateway, lifetime);
        await AwaitRegisteredAsync(Pnes.Values);
    }

    [Fact]
    public async Task Lifetimes_are_clamped_both_ways_and_default_to_a_day()
    {
        await StartAsync(new() { ["short"] = ("g1", 10), ["long"] = ("g1", 1_000_000), ["none"] = ("g1", 0), ["fine"] = ("g1", 300) },
            new() { ["g1"] = 0 });
        Assert.Equal(60, (await LeaseAsync("short")).LifetimeSeconds);
        Assert.Equal(86400, (await LeaseAsync("long")).LifetimeSeconds);
        Assert.Equal(86400, (await LeaseAsync("none")).LifetimeSeconds);
        Assert.Equal(300, (await LeaseAsync("fine")).LifetimeSeconds);
        Assert.Equal(86400, (await LeaseAsync("g1")).LifetimeSeconds);
    }

    [Fact]
    public async Task Expiry_removes_exactly_the_expired_entities_and_renewals_keep_the_rest()
    {
        await StartAsync(new() { ["gone"] = ("g1", 60), ["stays"] = ("g1", 600), ["renews"] = ("g1", 60) }, new() { ["g1"] = 600 });
        var renewsBefore = await LeaseAsync("renews");
        var deregistered = CreateTestProbe();
        Sys.EventStream.Subscribe(deregistered.Ref, typeof(EntitiesDeregistered));

        await StopEntityAsync(Pnes["gone"]); // the device vanishes: nobody renews its lease
        await AdvanceAsync(TimeSpan.FromSeconds(30));
        await AwaitAssertAsync(async () => Assert.True((await LeaseAsync("renews")).ExpiresAtMs > renewsBefore.ExpiresAtMs), Timeout);

        await AdvanceAsync(TimeSpan.FromSeconds(31));
        var expired = await deregistered.ExpectMsgAsync<EntitiesDeregistered>(Timeout);
        Assert.Equal(["gone"], expired.DeviceIds);
        Assert.Equal(DeregistrationReason.Expired, expired.Reason);
        Assert.Equal(["g1", "renews", "stays"], await RegisteredAsync());

        // and they keep living through many lifetimes (renewing at half-life), with the same registration.
        for (var step = 0; step < 60; step++)
        {
            Clock.Advance(TimeSpan.FromSeconds(5));
            await SettledAsync();
            var now = Clock.Now.ToUnixTimeMilliseconds();
            foreach (var id in new[] { "renews", "stays", "g1" })
                await AwaitAssertAsync(async () =>
                {
                    var lease = await LeaseAsync(id);
                    Assert.True(lease.Registered && lease.ExpiresAtMs > now + 5000, $"{id}: {lease}");
                }, Timeout);
        }

        Assert.Equal(["g1", "renews", "stays"], await RegisteredAsync());
        Assert.Equal(renewsBefore.RegistrationId, (await LeaseAsync("renews")).RegistrationId);
        await deregistered.ExpectNoMsgAsync(TimeSpan.Zero); // published before the registry answered the asks above
    }

    [Fact]
    public async Task A_gateways_expiry_takes_its_PNEs_with_it()
    {
        await StartAsync(new() { ["p1"] = ("g1", 3600), ["p2"] = ("g1", 3600), ["p3"] = ("g2", 3600) },
            new() { ["g1"] = 60, ["g2"] = 86400 });
        var deregistered = CreateTestProbe();
        Sys.EventStream.Subscribe(deregistered.Ref, typeof(EntitiesDeregistered));

        await StopEntityAsync(Gateways["g1"]);
        await AdvanceAsync(TimeSpan.FromSeconds(61));
        var expired = await deregistered.ExpectMsgAsync<EntitiesDeregistered>(Timeout);
        Assert.Equal(["g1", "p1", "p2"], expired.DeviceIds.Order());
        Assert.Equal(["g2", "p3"], await RegisteredAsync());
    }

    [Fact]
    public async Task Expired_entities_leave_their_groups_which_rekey_without_them()
    {
        await StartAsync(new() { ["p1"] = ("g1", 3600), ["p2"] = ("g1", 60) }, new() { ["g1"] = 86400 });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        await StopEntityAsync(Pnes["p2"]);
        await AdvanceAsync(TimeSpan.FromSeconds(61));
        await AwaitAssertAsync(async () =>
        {
            var state = await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout);
            Assert.Equal(2L, state.Epoch);
            Assert.Equal(["p1"], state.Members);
        }, Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
    }

    [Fact]
    public async Task Registration_ids_are_never_reused_after_expiry()
    {
        await StartAsync(new() { ["p1"] = ("g1", 60) }, new() { ["g1"] = 86400 });
        var first = (await LeaseAsync("p1")).RegistrationId!;
        await StopEntityAsync(Pnes["p1"]);
        await AdvanceAsync(TimeSpan.FromSeconds(61));
        await AwaitAssertAsync(async () => Assert.False((await LeaseAsync("p1")).Registered), Timeout);

        StartPne("p1", "g1", 60, actorName: "pne-p1-again");
        await AwaitRegisteredAsync([Pnes["p1"]]);
        var second = (await LeaseAsync("p1")).RegistrationId!;
        Assert.NotEqual(first, second);
        Assert.True(int.Parse(second[2..]) > int.Parse(first[2..]));
    }

    [Fact]
    public async Task A_PNE_deregisters_on_purpose_and_leaves_its_groups()
    {
        await StartAsync(new() { ["p1"] = ("g1", 0), ["p2"] = ("g1", 0) }, new() { ["g1"] = 0 });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        Pnes["p2"].Tell(new DeregisterDevice("p2"), TestActor);
        Assert.Equal(DeregistrationReason.Deregistered, (await ExpectMsgAsync<RegistrationEnded>(Timeout)).Reason);
        Assert.Equal(["g1", "p1"], await RegisteredAsync());
        Assert.False((await Pnes["p2"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).Registered);
        await AwaitAssertAsync(async () =>
            Assert.Equal(["p1"], (await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout)).Members), Timeout);
    }

    [Fact]
    public async Task The_cleaner_removes_a_bounded_batch_per_pass()
    {
        await StartServerAsync();
        StartGateway("g1", lifetimeSeconds: 86400);
        await AwaitRegisteredAsync(Gateways.Values);
        for (var i = 0; i < 12; i++)
            StartPne($"p{i}", "g1", 60);
        await AwaitRegisteredAsync(Pnes.Values);
        foreach (var pne in Pnes.Values)
            await StopEntityAsync(pne);

        var deregistered = CreateTestProbe();
        Sys.EventStream.Subscribe(deregistered.Ref, typeof(EntitiesDeregistered));
        // The default batch (1000) takes all twelve in one pass; the bound is a setting, exercised below.
        await AdvanceAsync(TimeSpan.FromSeconds(61));
        Assert.Equal(12, (await deregistered.ExpectMsgAsync<EntitiesDeregistered>(Timeout)).DeviceIds.Count);
    }
}

/// <summary>The lease cleaner's bound per pass.</summary>
public sealed class LeaseCleanerBoundTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
    cpns.registration.batch-window = 0s
    cpns.registration.cleaner-interval = 1s
    cpns.registration.cleaner-batch = 5
    """)
{
    [Fact]
    public async Task Each_pass_expires_at_most_the_configured_batch()
    {
        await StartServerAsync();
        StartGateway("g1", lifetimeSeconds: 86400);
        await AwaitRegisteredAsync(Gateways.Values);
        for (var i = 0; i < 12; i++)
            StartPne($"p{i:D2}", "g1", 60);
        await AwaitRegisteredAsync(Pnes.Values);
        var watcher = CreateTestProbe();
        foreach (var pne in Pnes.Values)
        {
            watcher.Watch(pne);
            Sys.Stop(pne);
            await watcher.ExpectTerminatedAsync(pne, Timeout);
        }

        var deregistered = CreateTestProbe();
        Sys.EventStream.Subscribe(deregistered.Ref, typeof(EntitiesDeregistered));

        var clock = (TestScheduler)Sys.Scheduler;
        clock.Advance(TimeSpan.FromSeconds(60));
        var passes = new List<int>();
        while (passes.Sum() < 12)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            passes.Add((await deregistered.ExpectMsgAsync<EntitiesDeregistered>(Timeout)).DeviceIds.Count);
        }

        Assert.Equal([5, 5, 2], passes);
    }
}
