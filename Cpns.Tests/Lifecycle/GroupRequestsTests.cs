using Akka.Actor;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Xunit;

namespace Cpns.Tests.Lifecycle;

/// <summary>A PNE's own group requests: one per group out at a time, in order, and a busy answer sends the same one again.</summary>
public sealed class GroupRequestsTests
{
    private static readonly IActorRef First = new DeadLetterProbe("first");
    private static readonly IActorRef Second = new DeadLetterProbe("second");

    [Fact]
    public void One_request_per_group_is_out_and_the_next_goes_when_it_is_answered()
    {
        var requests = new GroupRequests(maxBusyAnswers: 2);
        var add = new AddMember("grp", "p1", "p2");
        var remove = new RemoveMember("grp", "p1", "p2");
        Assert.True(requests.Add("grp", add, First));
        Assert.False(requests.Add("grp", remove, Second));
        Assert.True(requests.Add("other", new DeleteGroup("other", "p1"), Second)); // another group is not held up
        Assert.Same(add, requests.Out("grp"));

        Assert.Equal((First, (ICpnsMessage?)remove), requests.Answered("grp"));
        Assert.Same(remove, requests.Out("grp"));
        Assert.Equal((Second, (ICpnsMessage?)null), requests.Answered("grp"));
        Assert.Null(requests.Out("grp"));
        Assert.Equal((null, null), requests.Answered("grp")); // an answer nobody waits for
    }

    [Fact]
    public void A_busy_answer_keeps_the_request_out_until_it_has_had_its_share()
    {
        var requests = new GroupRequests(maxBusyAnswers: 2);
        var add = new AddMember("grp", "p1", "p2");
        requests.Add("grp", add, First);
        Assert.True(requests.Busy("grp"));
        Assert.True(requests.Busy("grp"));
        Assert.Same(add, requests.Out("grp"));
        Assert.False(requests.Busy("grp")); // the third: its asker hears the busy answer
        Assert.Equal((First, (ICpnsMessage?)null), requests.Answered("grp"));
        Assert.False(requests.Busy("grp"));
    }

    private sealed class DeadLetterProbe(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "test")) / name;
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
