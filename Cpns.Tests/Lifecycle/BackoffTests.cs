using Cpns.Actors.Common;
using Xunit;

namespace Cpns.Tests.Lifecycle;

public sealed class BackoffTests
{
    private static readonly Backoff Schedule = new(TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));

    [Fact]
    public void Ceilings_double_from_the_initial_wait_up_to_the_maximum()
    {
        Assert.Equal([250.0, 500, 1000, 2000, 3000, 3000], Enumerable.Range(1, 6).Select(a => Schedule.Ceiling(a).TotalMilliseconds));
        Assert.Equal(TimeSpan.FromSeconds(3), Schedule.Ceiling(10_000)); // no overflow for a long outage
        Assert.Equal(TimeSpan.FromMilliseconds(250), Schedule.Ceiling(0));
    }

    [Fact]
    public void Each_wait_is_drawn_from_the_upper_half_of_its_ceiling_and_they_differ()
    {
        var waits = Enumerable.Range(0, 200).Select(_ => Schedule.Delay(3)).ToList();
        Assert.All(waits, w => Assert.InRange(w, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(1000)));
        Assert.True(waits.Distinct().Count() > 100, "waits of senders refused together must spread");
    }

    [Fact]
    public void A_PNE_waits_five_times_as_long_as_its_gateway()
    {
        Assert.Equal(new Backoff(TimeSpan.FromMilliseconds(1250), TimeSpan.FromSeconds(15)), Schedule.Times(5));
    }
}
