using Cpns.Actors.Local;
using Akka.Actor;
using Akka.TestKit;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// Reachability apart from registration: heartbeats, unreachable after two misses, a bounded queue at the PN GW
/// for a PNE that cannot be reached, delivered in order when it is heard from again. Time runs on the test scheduler.
/// </summary>
public sealed class ConnectionTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
    cpns.registration.batch-window = 0s
    cpns.keys.pn-fanout-coalesce = 0s
    cpns.connections.heartbeat-interval = 10s
    cpns.connections.missed-heartbeats = 2
    cpns.connections.downlink-queue = 3
    """)
{
    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private Task<Reachability> ReachabilityAsync(string pne) =>
        Gateways["g1"].Ask<Reachability>(new GetReachability(pne), Timeout);

    private async Task<IActorRef> GatewayFunctionAsync(string name) =>
        await Sys.ActorSelection($"/user/gateway-g1/{name}").ResolveOne(Timeout);

    private async Task AdvanceAsync(int seconds)
    {
        for (var i = 0; i < seconds; i++)
        {
            Clock.Advance(TimeSpan.FromSeconds(1));
            await SettledAsync();
        }
    }

    [Fact]
    public async Task A_PNE_that_stops_heartbeating_is_unreachable_after_two_missed_and_reachable_when_heard_again()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Assert.True((await ReachabilityAsync("p2")).Reachable);

        Pnes["p2"].Tell(new Sleep("p2", Announce: false)); // goes silent without a word
        await AdvanceAsync(10);
        Assert.True((await ReachabilityAsync("p2")).Reachable, "one missed heartbeat is not enough");
        await AdvanceAsync(20);
        await AwaitAssertAsync(async () => Assert.False((await ReachabilityAsync("p2")).Reachable), Timeout);
        Assert.True((await ReachabilityAsync("p1")).Reachable, "p1 kept heartbeating");

        Pnes["p2"].Tell(new Wake("p2"));
        await AwaitAssertAsync(async () => Assert.True((await ReachabilityAsync("p2")).Reachable), Timeout);
    }

    [Fact]
    public async Task Messages_for_a_sleeping_PNE_are_held_in_a_bounded_queue_and_delivered_in_order_on_wake()
    {
        await StartNetworkAsync(["g1"], Enumerable.Range(1, 8).ToDictionary(i => $"p{i}", _ => "g1"));
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch), Timeout);

        Pnes["p2"].Tell(new Sleep("p2"));
        await AwaitAssertAsync(async () => Assert.True((await ReachabilityAsync("p2")).Sleeping), Timeout);

        // Five rekeys while p2 sleeps: each one a notice (smf) and a key (cskmf) for p2, held at the PN GW.
        for (var i = 3; i <= 7; i++)
        {
            Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", $"p{i}")), TestActor);
            var epoch = (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch;
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        }

        await AwaitAssertAsync(async () => Assert.Equal(6, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        Assert.Equal(1, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch);
        var smf = await GatewayFunctionAsync("smf");
        var cskmf = await GatewayFunctionAsync("cskmf");
        foreach (var function in new[] { smf, cskmf })
        {
            await AwaitAssertAsync(async () =>
            {
                var held = await function.Ask<DownlinkStats>(GetDownlinkStats.Instance, Timeout);
                Assert.Equal((3, 2L), (held.Queued, held.Dropped)); // the bound: the two oldest went
            }, Timeout);
        }

        var flow = new FlowRecorder(this);
        Pnes["p2"].Tell(new Wake("p2"));
        await flow.UntilAsync(s => s.Count(x => x.To == "pne-p2/cskmf" && x.Step == 8) == 3 &&
                                   s.Count(x => x.To == "pne-p2/smf" && x.Step == 7) == 3, Timeout);
        Assert.Equal([4L, 5, 6], flow.Steps.Where(x => x.To == "pne-p2/smf" && x.Step == 7).Select(x => x.Epoch));
        Assert.Equal([4L, 5, 6], flow.Steps.Where(x => x.To == "pne-p2/cskmf" && x.Step == 8).Select(x => x.Epoch));
        await AwaitAssertAsync(async () => Assert.Equal(6, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch), Timeout);
        Assert.Equal(0, (await smf.Ask<DownlinkStats>(GetDownlinkStats.Instance, Timeout)).Queued);
    }

    [Fact]
    public async Task A_restarted_gateway_registers_its_whole_PN_again_in_one_batch()
    {
        await StartNetworkAsync(["g1"], Enumerable.Range(1, 5).ToDictionary(i => $"p{i}", _ => "g1"));
        var before = new Dictionary<string, string>();
        foreach (var (id, pne) in Pnes)
            before[id] = (await pne.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId!;
        var batches = CreateTestProbe();
        Sys.EventStream.Subscribe(batches.Ref, typeof(PneBatchRegistered));

        var watcher = CreateTestProbe();
        watcher.Watch(Gateways["g1"]);
        Sys.Stop(Gateways["g1"]);
        await watcher.ExpectTerminatedAsync(Gateways["g1"], Timeout);
        StartGateway("g1");

        var batch = await batches.ExpectMsgAsync<PneBatchRegistered>(Timeout);
        Assert.Equal(("g1", 5), (batch.GatewayId, batch.Count));
        foreach (var (id, pne) in Pnes)
            await AwaitAssertAsync(async () =>
            {
                var now = await pne.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout);
                Assert.NotEqual(before[id], now.RegistrationId);
            }, Timeout);
        await batches.ExpectNoMsgAsync(TimeSpan.Zero); // every PNE is registered again, and that took the one batch

        // and the PN works on: a new group reaches its PNEs through the restarted PN GW.
        Server.Smf.Tell(new LocalRequest(new CreateGroup("after", "p1", DeliveryMode.Pull, ["p1", "p5"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p5"], "after")).CurrentEpoch), Timeout);
    }

    [Fact]
    public async Task A_gateway_answers_discovery_with_its_id_and_mode()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string>(), EntityKind.Both);
        Gateways["g1"].Tell(new DiscoverGateways("newcomer"), TestActor);
        var advertisement = await ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.Equal(("g1", EntityKind.Both, true), (advertisement.GatewayId, advertisement.Mode, advertisement.AcceptsNewPnes));
    }
}
