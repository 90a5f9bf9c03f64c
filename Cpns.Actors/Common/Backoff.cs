namespace Cpns.Actors.Common;

/// <summary>
/// The one retry schedule of the enabler: exponential from <paramref name="Initial"/> up to <paramref name="Max"/>,
/// each wait drawn uniformly from [50%, 100%] of its ceiling so that senders refused together do not retry together.
/// </summary>
public sealed record Backoff(TimeSpan Initial, TimeSpan Max)
{
    /// <summary>The ceiling before the <paramref name="attempt"/>-th retry (1: the first).</summary>
    public TimeSpan Ceiling(int attempt) =>
        TimeSpan.FromTicks(Math.Min(Max.Ticks, Initial.Ticks << Math.Clamp(attempt - 1, 0, 20)));

    /// <summary>The wait before the <paramref name="attempt"/>-th retry (1: the first).</summary>
    public TimeSpan Delay(int attempt) =>
        TimeSpan.FromTicks((long)(Ceiling(attempt).Ticks * (0.5 + 0.5 * Random.Shared.NextDouble())));

    public Backoff Times(int factor) => new(Initial * factor, Max * factor);
}
