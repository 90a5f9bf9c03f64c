using Cpns.Actors;
using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// PN discovery (seed §5.3.1.8): a PNE scans the PN GWs within its reach, registers through the best by their
/// advertisements, and through another when its PN GW goes away.
/// </summary>
public sealed class DiscoveryTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static GatewayAdvertisement Ad(string id, SecurityLevel security = SecurityLevel.High, int load = 0,
        EntityKind mode = EntityKind.PnGateway, bool accepts = true, bool acceptsMoving = true) =>
        new(id, mode, ActorRefs.Nobody, accepts, load, security, acceptsMoving);

    private static readonly IReadOnlySet<string> NoneFailed = new HashSet<string>();

    private static string[] Ranked(string device, bool moving, IReadOnlySet<string> failed, params GatewayAdvertisement[] heard) =>
        GatewayChoice.Rank(device, heard, moving, failed).Select(a => a.GatewayId).ToArray();

    [Fact]
    public void The_choice_takes_only_PN_GWs_that_take_the_PNE_in_then_security_mode_and_load()
    {
        // Not registered yet (accepts no PNE), or no bridges for a PNE that lost its PN GW: not a candidate.
        Assert.Equal(["b"], Ranked("p1", false, NoneFailed, Ad("a", accepts: false), Ad("b")));
        Assert.Equal(["b"], Ranked("p1", true, NoneFailed, Ad("a", acceptsMoving: false), Ad("b")));
        Assert.Equal(["a", "b"], Ranked("p1", false, NoneFailed, Ad("a", acceptsMoving: false), Ad("b", load: 5)));
        // The more secure PN first, whatever the load; a dedicated PN GW before a BOTH device; then the lighter load.
        Assert.Equal(["high", "medium"], Ranked("p1", false, NoneFailed, Ad("medium", SecurityLevel.Medium), Ad("high", load: 900)));
        Assert.Equal(["gw", "both"], Ranked("p1", false, NoneFailed, Ad("both", mode: EntityKind.Both), Ad("gw", load: 3)));
        Assert.Equal(["light", "heavy"], Ranked("p1", false, NoneFailed, Ad("heavy", load: 40), Ad("light", load: 9)));
        // One the PNE just failed with goes last, but is not given up.
        Assert.Equal(["b", "a"], Ranked("p1", false, new HashSet<string> { "a" }, Ad("a", SecurityLevel.High), Ad("b", SecurityLevel.Low)));
        Assert.Empty(Ranked("p1", false, NoneFailed));
    }

    [Fact]
    public void Loads_within_a_factor_of_two_are_equal_and_equal_PN_GWs_share_a_crowd()
    {
        Assert.Equal([0, 1, 2, 2, 3, 3, 7, 8], new[] { 0, 1, 2, 3, 4, 7, 100, 128 }.Select(GatewayChoice.LoadClass));
        // 2,000 PNEs starting at once see two empty PN GWs: each gets about half of them, and the same PNE always
        // ranks them the same way (the hash is not the process's string hash).
        var first = Enumerable.Range(0, 2000).Select(i => Ranked($"p{i:D5}", false, NoneFailed, Ad("g1"), Ad("g2"))[0]).ToList();
        Assert.InRange(first.Count(g => g == "g1"), 900, 1100);
        Assert.Equal(first, Enumerable.Range(0, 2000).Select(i => Ranked($"p{i:D5}", false, NoneFailed, Ad("g2"), Ad("g1"))[0]));
        // Within one load class the hash decides, not the few PNEs of difference.
        Assert.Equal(Ranked("p00007", false, NoneFailed, Ad("g1", load: 64), Ad("g2", load: 127)),
            Ranked("p00007", false, NoneFailed, Ad("g1", load: 100), Ad("g2", load: 65)));
    }

    private async Task<string> GatewayOfAsync(string pne) =>
        (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Single(e => e.DeviceId == pne).GatewayId;

    private async Task<int> AttachedAsync(string gateway) =>
        (await Gateways[gateway].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).AttachedPnes;

    private IActorRef StartPneInReachOf(string pneId, params string[] gateways)
    {
        var identity = Identities[pneId] = EntityIdentity.Generate(pneId, EntityKind.Pne);
        return Pnes[pneId] = Deployment.StartPne(Sys, identity, Secrets.TrustAnchor, Gateways[gateways[0]], Settings,
            enrolmentToken: EnrolmentTokenFor(pneId, EntityKind.Pne), alsoInReach: gateways.Skip(1).Select(g => Gateways[g]).ToList());
    }

    [Fact]
    public async Task A_PNE_registers_through_the_most_secure_PN_in_reach_and_then_the_least_loaded()
    {
        await StartNetworkAsync(["g1", "g2", "g3"], new Dictionary<string, string> { ["p1"] = "g2", ["p2"] = "g2", ["p3"] = "g2" },
            pnSecurity: new Dictionary<string, SecurityLevel> { ["g1"] = SecurityLevel.Medium });
        Gateways["g1"].Tell(new DiscoverGateways("newcomer"), TestActor);
        var advertised = await ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.Equal(("g1", true, 0, SecurityLevel.Medium, true),
            (advertised.GatewayId, advertised.AcceptsNewPnes, advertised.Load, advertised.PnSecurity, advertised.AcceptsMovingPnes));

        // g1 is the first it was given, but its PN is only Medium; g2 already serves three PNEs, g3 none.
        StartPneInReachOf("p4", "g1", "g2", "g3");
        await AwaitRegisteredAsync([Pnes["p4"]]);
        Assert.Equal("g3", await GatewayOfAsync("p4"));
        Assert.Equal(0, await AttachedAsync("g1"));

        // The advertisements say what the choice saw: g3 now serves p4; g2 with its bridges closed takes new PNEs only.
        Gateways["g3"].Tell(new DiscoverGateways("newcomer"), TestActor);
        var g3 = await ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.Equal((1, SecurityLevel.High), (g3.Load, g3.PnSecurity));
        Gateways["g2"].Tell(new SetGatewayPolicy(AcceptBridges: false, AgreeToHandover: false));
        Gateways["g2"].Tell(new DiscoverGateways("newcomer"), TestActor);
        var g2 = await ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.Equal((3, true, false), (g2.Load, g2.AcceptsNewPnes, g2.AcceptsMovingPnes));
    }

    [Fact]
    public async Task A_PN_GW_held_below_what_it_declares_advertises_the_level_it_is_held_to()
    {
        await StartServerAsync();
        StartGateway("g1", pnSecurity: SecurityLevel.High, pnSecurityCeiling: SecurityLevel.Low);
        StartGateway("g2", pnSecurity: SecurityLevel.Medium);
        await AwaitRegisteredAsync(Gateways.Values);
        Gateways["g1"].Tell(new DiscoverGateways("newcomer"), TestActor);
        Assert.Equal(SecurityLevel.Low, (await ExpectMsgAsync<GatewayAdvertisement>(Timeout)).PnSecurity);

        StartPneInReachOf("p1", "g1", "g2");
        await AwaitRegisteredAsync([Pnes["p1"]]);
        Assert.Equal("g2", await GatewayOfAsync("p1"));
    }

    [Fact]
    public async Task A_PNE_whose_PN_GW_goes_away_moves_to_another_in_reach_that_takes_it_and_keeps_its_groups()
    {
        await StartNetworkAsync(["g1", "g2", "g3"], new Dictionary<string, string> { ["p2"] = "g3" },
            pnSecurity: new Dictionary<string, SecurityLevel> { ["g2"] = SecurityLevel.Medium, ["g3"] = SecurityLevel.Low });
        StartPneInReachOf("p1", "g1", "g2", "g3");
        await AwaitRegisteredAsync([Pnes["p1"]]);
        Assert.Equal("g1", await GatewayOfAsync("p1"));
        var before = (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId;
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        // g2 has the more secure PN of the two left, but takes in no PNE from another PN GW: p1 goes to g3.
        Gateways["g2"].Tell(new SetGatewayPolicy(AcceptBridges: false, AgreeToHandover: false));
        await StopEntityAsync(Gateways["g1"]);
        await AwaitAssertAsync(async () => Assert.Equal("g3", await GatewayOfAsync("p1")), Timeout);
        await AwaitRegisteredAsync([Pnes["p1"]]);
        Assert.NotEqual(before, (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId);
        Assert.Equal(0, await AttachedAsync("g2"));
        Assert.Equal(2, await AttachedAsync("g3"));

        // Its group follows it: rekeyed around the move, the new key reaches p1 through g3.
        await AwaitAssertAsync(async () => Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        Assert.Equal(2, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch);
        Assert.Equal(["p1", "p2"], (await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout)).Members);

        // A PNE that has never registered takes g2, the more secure PN: the bridge policy is only for PNEs moving in.
        StartPneInReachOf("p3", "g3", "g2");
        await AwaitRegisteredAsync([Pnes["p3"]]);
        Assert.Equal("g2", await GatewayOfAsync("p3"));
    }
}
