using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Server;

/// <summary>The one placement view of the server's functions: where entities are, their PN's level, and who left how.</summary>
public sealed class PlacementsTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static readonly EntityIdentity G1 = EntityIdentity.Generate("g1", EntityKind.PnGateway);
    private static readonly EntityIdentity P1 = EntityIdentity.Generate("p1", EntityKind.Pne);
    private static readonly EntityIdentity P2 = EntityIdentity.Generate("p2", EntityKind.Pne);

    private GatewayPlaced Placed(SecurityLevel level)
    {
        var nobody = ActorRefs.Nobody;
        return new GatewayPlaced("g1", EntityKind.PnGateway, G1.PublicKeys, level,
            new GatewayEndpoints(nobody, nobody, nobody, nobody, nobody, nobody, nobody));
    }

    private (Placements Placements, EnvelopeGuard Guard) PlacedNetwork()
    {
        var placements = new Placements();
        var guard = new EnvelopeGuard("test", Sys, Settings);
        Assert.True(placements.ApplyAndTrust(Placed(SecurityLevel.Medium), guard, trustPnes: true));
        Assert.True(placements.ApplyAndTrust(new PnesPlaced("g1", [new PlacedPne("p1", P1.PublicKeys), new PlacedPne("p2", P2.PublicKeys)]),
            guard, trustPnes: true));
        Assert.False(placements.ApplyAndTrust(new GetServerEndpoints(), guard, trustPnes: true));
        return (placements, guard);
    }

    [Fact]
    public void A_placed_PNE_is_reached_through_its_PN_GW_whose_level_is_known()
    {
        var (placements, guard) = PlacedNetwork();
        Assert.Equal(("g1", "g1", "g1"), (placements.GatewayOf("p1"), placements.GatewayOf("p2"), placements.GatewayOf("g1")));
        Assert.Equal(["p1", "p2"], placements.PnesOf("g1").Order());
        Assert.Equal(SecurityLevel.Medium, placements.LevelOf("g1"));
        Assert.Equal(SecurityLevel.None, placements.LevelOf("g2"));
        Assert.Null(placements.GatewayOf("p9"));
        Assert.True(guard.Knows("p1") && guard.Knows("g1"));
    }

    [Fact]
    public void One_that_left_is_no_longer_placed_but_where_it_was_is_kept_and_the_guard_knows_how_it_left()
    {
        var (placements, guard) = PlacedNetwork();
        placements.ApplyAndTrust(new EntitiesRemoved(["p1"], Revoked: true), guard, trustPnes: true);
        placements.ApplyAndTrust(new EntitiesRemoved(["p2"], Revoked: false), guard, trustPnes: true);

        Assert.Equal((null, null), (placements.GatewayOf("p1"), placements.GatewayOf("p2")));
        Assert.Equal(("g1", "g1"), (placements.LastGatewayOf("p1"), placements.LastGatewayOf("p2"))); // its removal notice goes there
        Assert.Empty(placements.PnesOf("g1"));
        Assert.True(placements.HasLeft("p1"));
        Assert.True(guard.IsRevoked("p1")); // refused as revoked
        Assert.False(guard.IsRevoked("p2") || guard.Knows("p2")); // forgotten

        // Registering again places it again and trusts it.
        placements.ApplyAndTrust(new PnesPlaced("g1", [new PlacedPne("p1", P1.PublicKeys)]), guard, trustPnes: true);
        Assert.Equal("g1", placements.GatewayOf("p1"));
        Assert.False(placements.HasLeft("p1") || guard.IsRevoked("p1"));
    }

    [Fact]
    public void A_PN_GW_that_left_takes_its_PNEs_out_of_reach_and_its_level_with_it()
    {
        var (placements, guard) = PlacedNetwork();
        placements.ApplyAndTrust(new EntitiesRemoved(["g1"], Revoked: false), guard, trustPnes: true);
        Assert.Null(placements.GatewayOf("p1"));
        Assert.Null(placements.Gateway("g1"));
        Assert.NotNull(placements.KnownGateway("g1"));
        Assert.Empty(placements.GatewayIds);
        Assert.Equal(SecurityLevel.None, placements.LevelOf("g1"));

        placements.ApplyAndTrust(Placed(SecurityLevel.High), guard, trustPnes: true);
        Assert.Equal(("g1", SecurityLevel.High), (placements.GatewayOf("p1"), placements.LevelOf("g1")));
    }
}
