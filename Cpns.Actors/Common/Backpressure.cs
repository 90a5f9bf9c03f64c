using Akka.Actor;

namespace Cpns.Actors.Common;

/// <summary>
/// Backpressure for a function on the hot path (design §9): how far behind it is — the messages waiting in its
/// mailbox beyond <c>cpns.load.busy-mailbox-depth</c> — and how long a requester it turns away should wait. A function
/// that is behind answers "busy, retry after" at once, without the request's public-key work: waiting in a long queue
/// would only make the request stale and its retry one more in the queue.
/// </summary>
public sealed class Backpressure(IActorRef self, int busyMailboxDepth, string function)
{
    /// <summary>Messages waiting beyond the threshold, or 0 while the function keeps up (and always with a threshold of 0).</summary>
    public long Backlog()
    {
        if (busyMailboxDepth <= 0 || self is not ActorRefWithCell local)
            return 0;
        var waiting = local.Underlying.NumberOfMessages;
        return waiting > busyMailboxDepth ? waiting : 0;
    }

    /// <summary>
    /// Counts one busy answer and says how long its requester waits: about the time the backlog takes to drain at a few
    /// thousand messages a second, jittered so that the retries do not come back together.
    /// </summary>
    public BusyAnswer TurnAway(long backlog)
    {
        CpnsMetrics.BusyAnswers.Add(1, CpnsMetrics.Tag("function", function));
        return new BusyAnswer((int)Math.Clamp(backlog / 2 + Random.Shared.Next(0, 250), MinRetryAfterMs, MaxRetryAfterMs),
            $"{backlog} messages waiting");
    }

    /// <summary>
    /// The node's actors wait longer than <c>cpns.load.busy-lag</c> for a thread (<see cref="DispatcherLag"/>): new work
    /// that would add to everyone's queue is turned away, counted, for about as long as the node is behind. What is already
    /// under way goes on, and catches up.
    /// </summary>
    public BusyAnswer? NodeBehind(ActorSystem system, TimeSpan busyLag)
    {
        if (busyLag <= TimeSpan.Zero || DispatcherLag.Of(system).Current is var lag && lag <= busyLag)
            return null;
        CpnsMetrics.BusyAnswers.Add(1, CpnsMetrics.Tag("function", function));
        return new BusyAnswer(RetryAfterLag(lag, Random.Shared), $"this node is {lag.TotalMilliseconds:0} ms behind");
    }

    /// <summary>A wait between one and two times the node's lag: a crowd turned away together does not come back together.</summary>
    public static int RetryAfterLag(TimeSpan lag, Random random) =>
        (int)Math.Clamp(lag.TotalMilliseconds * (1 + random.NextDouble()), MinRetryAfterMs, MaxRetryAfterMs);

    /// <summary>How long a requester waits after a busy answer: what it was told, never less than the shortest wait.</summary>
    public static TimeSpan WaitFor(int retryAfterMs) => TimeSpan.FromMilliseconds(Math.Max(retryAfterMs, MinRetryAfterMs));

    public const int MinRetryAfterMs = 100;
    public const int MaxRetryAfterMs = 10_000;
}

/// <summary>What a busy answer says: when to ask again, and why (for the requester's log).</summary>
public readonly record struct BusyAnswer(int RetryAfterMs, string Detail);
