using Akka.Actor;
using Akka.TestKit.Xunit2;
using Cpns.Actors.Common;
using Xunit;

namespace Cpns.Tests.Common;

/// <summary>A sibling introduced after it is needed: what is sent before is held in order; only its introducer introduces it.</summary>
public sealed class SiblingTests : TestKit
{
    [Fact]
    public async Task Sends_before_the_introduction_arrive_in_order_with_it_and_later_ones_at_once()
    {
        var parent = CreateTestProbe();
        var smf = CreateTestProbe();
        var sibling = new Sibling("smf");

        sibling.Tell("first", TestActor);
        sibling.Tell("second", TestActor);
        await smf.ExpectNoMsgAsync(TimeSpan.Zero);

        Assert.True(sibling.TryMeet(new SiblingIs("smf", smf.Ref), parent.Ref, parent.Ref));
        Assert.Equal("first", await smf.ExpectMsgAsync<string>());
        Assert.Equal("second", await smf.ExpectMsgAsync<string>());
        sibling.Tell("third", TestActor);
        Assert.Equal("third", await smf.ExpectMsgAsync<string>());
    }

    [Fact]
    public async Task An_introduction_from_another_actor_or_of_another_name_is_not_taken()
    {
        var parent = CreateTestProbe();
        var stranger = CreateTestProbe();
        var smf = CreateTestProbe();
        var sibling = new Sibling("smf");
        sibling.Tell("held", TestActor);

        Assert.False(sibling.TryMeet(new SiblingIs("smf", stranger.Ref), stranger.Ref, parent.Ref));
        Assert.False(sibling.TryMeet(new SiblingIs("seca", smf.Ref), parent.Ref, parent.Ref));
        Assert.False(sibling.TryMeet("smf", parent.Ref, parent.Ref));
        await stranger.ExpectNoMsgAsync(TimeSpan.Zero);

        Assert.True(sibling.TryMeet(new SiblingIs("smf", smf.Ref), parent.Ref, parent.Ref));
        Assert.Equal("held", await smf.ExpectMsgAsync<string>());
    }
}
