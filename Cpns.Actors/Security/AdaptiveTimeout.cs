namespace Cpns.Actors.Security;

/// <summary>
/// How long a key holder waits for a pushed key before it pulls it, learnt from how long pushes took here: the smoothed
/// delivery time plus four times its mean deviation (the way TCP sets its retransmission timeout, RFC 6298), never below
/// the configured floor nor above the ceiling. Each wait that runs out doubles it, until a push is seen again. So an
/// overloaded network, whose pushes take longer, is not answered with pulls that add to the load. Owned by one actor.
/// </summary>
public sealed class AdaptiveTimeout(TimeSpan floor, TimeSpan ceiling)
{
    private double? _smoothedMs;
    private double _deviationMs;
    private int _doublings;

    public TimeSpan Current
    {
        get
        {
            var ms = (_smoothedMs is { } smoothed ? smoothed + 4 * _deviationMs : floor.TotalMilliseconds) * (1 << _doublings);
            return TimeSpan.FromMilliseconds(Math.Clamp(ms, floor.TotalMilliseconds, Math.Max(floor.TotalMilliseconds, ceiling.TotalMilliseconds)));
        }
    }

    /// <summary>A push arrived this long after it was expected.</summary>
    public void Observe(TimeSpan took)
    {
        var ms = Math.Max(0, took.TotalMilliseconds);
        if (_smoothedMs is not { } smoothed)
        {
            _smoothedMs = ms;
            _deviationMs = ms / 2;
        }
        else
        {
            _deviationMs = 0.75 * _deviationMs + 0.25 * Math.Abs(smoothed - ms);
            _smoothedMs = 0.875 * smoothed + 0.125 * ms;
        }

        _doublings = 0;
    }

    /// <summary>A wait ran out (the key was pulled instead): wait twice as long next time, up to the ceiling.</summary>
    public void TimedOut() => _doublings = Math.Min(_doublings + 1, 10);
}
