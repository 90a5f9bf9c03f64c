using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>The push timeout learnt from observed push times (RFC 6298's estimator), between its floor and its ceiling.</summary>
public sealed class AdaptiveTimeoutTests
{
    private static readonly TimeSpan Floor = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Ceiling = TimeSpan.FromSeconds(60);

    [Fact]
    public void It_starts_at_the_floor_and_follows_slow_pushes_up_and_back_down_never_below_the_floor()
    {
        var timeout = new AdaptiveTimeout(Floor, Ceiling);
        Assert.Equal(Floor, timeout.Current);
        timeout.Observe(TimeSpan.FromSeconds(10)); // first sample: 10 s + 4 × 5 s
        Assert.Equal(TimeSpan.FromSeconds(30), timeout.Current);
        timeout.Observe(TimeSpan.FromSeconds(10)); // deviation 3.75 s, smoothed 10 s
        Assert.Equal(TimeSpan.FromSeconds(25), timeout.Current);
        for (var i = 0; i < 100; i++)
            timeout.Observe(TimeSpan.FromMilliseconds(50));
        Assert.Equal(Floor, timeout.Current); // fast pushes: the floor, not 50 ms
    }

    [Fact]
    public void Each_wait_that_runs_out_doubles_it_up_to_the_ceiling_until_a_push_is_seen()
    {
        var timeout = new AdaptiveTimeout(Floor, Ceiling);
        timeout.TimedOut();
        Assert.Equal(TimeSpan.FromSeconds(6), timeout.Current);
        timeout.TimedOut();
        Assert.Equal(TimeSpan.FromSeconds(12), timeout.Current);
        for (var i = 0; i < 20; i++)
            timeout.TimedOut();
        Assert.Equal(Ceiling, timeout.Current);
        timeout.Observe(TimeSpan.FromSeconds(1));
        Assert.Equal(Floor, timeout.Current); // 1 s + 4 × 0.5 s is under the floor
    }
}
