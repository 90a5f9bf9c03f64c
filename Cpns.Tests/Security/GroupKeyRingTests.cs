using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>The key ring's rules without an actor: what a holder installs after it dropped, left or was revoked.</summary>
public sealed class GroupKeyRingTests
{
    private static readonly EntityIdentity Server = EntityIdentity.Generate("cpns-server", EntityKind.Server);

    private static bool Install(GroupKeyRing ring, long epoch)
    {
        var key = GroupKey.Generate("grp", epoch);
        return ring.Install(key, ["p1"], EpochAnnouncement.Sign(Server, "grp", epoch, key.KeyCheck), 0);
    }

    [Fact]
    public void A_holder_that_left_at_an_epoch_installs_no_delivery_of_it_or_before_but_a_later_one()
    {
        var ring = new GroupKeyRing();
        Assert.True(Install(ring, 3));
        ring.Drop("grp", 4, revoked: false, leftGroup: true);
        Assert.Empty(ring.State("grp", "p1").Epochs);
        Assert.False(Install(ring, 4)); // the push of the epoch that removed it, arriving late
        Assert.False(Install(ring, 3));
        Assert.Empty(ring.State("grp", "p1").Epochs);
        Assert.True(Install(ring, 5)); // added again later
        Assert.Equal([5L], ring.State("grp", "p1").Epochs);
    }

    [Fact]
    public void A_holder_that_merely_lost_a_key_installs_it_again()
    {
        var ring = new GroupKeyRing();
        Assert.True(Install(ring, 1));
        ring.Drop("grp", 1, revoked: false);
        Assert.True(Install(ring, 1));
    }

    [Fact]
    public void The_leave_marker_holds_also_when_the_epoch_had_not_arrived_yet()
    {
        var ring = new GroupKeyRing();
        ring.Drop("grp", 2, revoked: false, leftGroup: true);
        Assert.False(Install(ring, 2));
        Assert.False(ring.State("grp", "p1").Epochs.Any());
    }
}
