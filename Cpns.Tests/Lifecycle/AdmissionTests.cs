using Cpns.Actors.Gateway;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Akka.Actor;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// A PN GW takes in only as many PNEs at once as it is set to, and none while its node is behind: a PNE that scans then
/// hears "busy, scan again after N ms" (no public-key work on either side) and registers once there is room.
/// </summary>
public sealed class AdmissionTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.load.registrations-in-progress = 1
    cpns.load.busy-lag = 0s
    """)
{
    private static readonly TimeSpan BusyLag = TimeSpan.FromSeconds(1);

    [Fact]
    public void A_PN_GW_holds_a_place_for_each_PNE_it_answered_and_turns_the_next_away_once_full()
    {
        var admission = new RegistrationAdmission(maxInProgress: 2, BusyLag);
        var random = new Random(7);
        Assert.Equal(0, admission.Answer("p1", inProgress: 0, TimeSpan.Zero, nowMs: 1_000, holdUntilMs: 3_000, random));
        Assert.Equal(0, admission.Answer("p2", inProgress: 0, TimeSpan.Zero, 1_000, 3_000, random));
        var busy = admission.Answer("p3", inProgress: 0, TimeSpan.Zero, 1_000, 3_000, random);
        Assert.InRange(busy, 250, 1_000);
        // A PNE that scans again keeps its place; its hello moves it among those in progress (counted by the caller).
        Assert.Equal(0, admission.Answer("p1", inProgress: 0, TimeSpan.Zero, 2_000, 4_000, random));
        admission.Arrived("p1");
        Assert.NotEqual(0, admission.Answer("p3", inProgress: 1, TimeSpan.Zero, 2_000, 4_000, random));
        // A place not taken up in time is given to the next PNE.
        Assert.Equal(0, admission.Answer("p3", inProgress: 1, TimeSpan.Zero, 3_001, 5_000, random));
        Assert.NotEqual(0, admission.Answer("p4", inProgress: 1, TimeSpan.Zero, 3_001, 5_000, random));
    }

    [Fact]
    public void A_node_behind_on_its_work_turns_every_PNE_away_for_about_as_long_as_it_is_behind()
    {
        var admission = new RegistrationAdmission(maxInProgress: 0, BusyLag);
        var random = new Random(7);
        Assert.Equal(0, admission.Answer("p1", 10_000, TimeSpan.FromMilliseconds(900), 0, 1, random)); // no bound on the count
        var waits = Enumerable.Range(0, 200).Select(i => admission.Answer($"p{i}", 0, TimeSpan.FromSeconds(3), 0, 1, random)).ToList();
        Assert.All(waits, w => Assert.InRange(w, 3_000, 6_000));
        Assert.True(waits.Distinct().Count() > 150, "the waits are spread, so the crowd does not come back at once");
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(10_000, admission.Answer("p1", 0, TimeSpan.FromMinutes(1), 0, 1, random)));
        Assert.Equal(0, new RegistrationAdmission(0, TimeSpan.Zero).Answer("p1", 0, TimeSpan.FromMinutes(1), 0, 1, random));
    }

    [Fact]
    public void A_PNE_chooses_no_PN_GW_that_said_it_is_busy()
    {
        GatewayAdvertisement Ad(string id, int retryAfterMs = 0) =>
            new(id, EntityKind.PnGateway, ActorRefs.Nobody, true, 0, SecurityLevel.High, true, retryAfterMs);
        Assert.Equal(["b"], GatewayChoice.Rank("p1", [Ad("a", retryAfterMs: 400), Ad("b")], false, new HashSet<string>())
            .Select(a => a.GatewayId));
        Assert.Empty(GatewayChoice.Rank("p1", [Ad("a", retryAfterMs: 400)], false, new HashSet<string>()));
    }

    [Fact]
    public async Task A_PNE_that_scans_a_full_PN_GW_is_told_busy_scans_again_and_registers_once_there_is_room()
    {
        await StartServerAsync();
        var gateway = StartGateway("g1");
        await AwaitRegisteredAsync([gateway]);
        using var busy = new MetricRecorder("cpns.busy_answers", "function");

        // A scan the PN GW answers "come in" holds its only place for the scan window and two seconds more.
        var scanner = CreateTestProbe();
        gateway.Tell(new DiscoverGateways("p9"), scanner.Ref);
        Assert.False((await scanner.ExpectMsgAsync<GatewayAdvertisement>(Timeout)).Busy);
        gateway.Tell(new DiscoverGateways("p8"), scanner.Ref);
        var turnedAway = await scanner.ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.True(turnedAway.AcceptsNewPnes);
        Assert.InRange(turnedAway.RetryAfterMs, 250, 1_000);

        // A PNE that scans now is turned away until the place is free, without a failed attempt, and then registers.
        StartPne("p1", "g1");
        await AwaitAssertAsync(() => Assert.True(busy["pn-gw-admission"] >= 2), Timeout);
        await AwaitRegisteredAsync([Pnes["p1"]]);
        Assert.Equal(["p1"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Select(p => p.DeviceId));
        Assert.Equal(0, (await Pnes["p1"].Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.Values.Sum());
    }
}
