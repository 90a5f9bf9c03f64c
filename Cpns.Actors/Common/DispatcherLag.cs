using System.Diagnostics;
using Akka.Actor;

namespace Cpns.Actors.Common;

/// <summary>
/// How long this node's actors wait for a thread (design §9): a probe on the default dispatcher is due every
/// <c>cpns.load.lag-probe-interval</c> and measures how late it runs. A mailbox shows one function's backlog; this shows a
/// node behind on all its work — the case of a simulation, where every PN GW shares the process's cores. Read from any
/// thread; a probe that is overdue counts as late by as much as it is overdue, so the figure does not wait for the probe.
/// </summary>
public sealed class DispatcherLag : IExtension
{
    private long _measuredTicks;
    private long _nextDueTimestamp = long.MaxValue;

    public static DispatcherLag Of(ActorSystem system) => system.WithExtension<DispatcherLag, DispatcherLagProvider>();

    public TimeSpan Current
    {
        get
        {
            var overdue = Stopwatch.GetElapsedTime(Volatile.Read(ref _nextDueTimestamp));
            return TimeSpan.FromTicks(Math.Max(Volatile.Read(ref _measuredTicks), overdue.Ticks));
        }
    }

    private void Due(long timestamp) => Volatile.Write(ref _nextDueTimestamp, timestamp);

    private void Measured(TimeSpan lag) => Volatile.Write(ref _measuredTicks, Math.Max(0, lag.Ticks));

    internal void Start(ExtendedActorSystem system, TimeSpan interval)
    {
        // A test's virtual scheduler keeps no time of the node's: nothing is measured, the lag stays zero.
        if (interval > TimeSpan.Zero && system.Scheduler is HashedWheelTimerScheduler)
            system.SystemActorOf(Props.Create(() => new Probe(this, interval)).WithDispatcher("akka.actor.default-dispatcher"),
                "cpns-dispatcher-lag");
    }

    private sealed class Probe : ReceiveActor, IWithTimers
    {
        private sealed record Tick : INoSerializationVerificationNeeded
        {
            public static readonly Tick Instance = new();
        }

        private readonly DispatcherLag _lag;
        private readonly TimeSpan _interval;
        private long _dueTimestamp;

        public Probe(DispatcherLag lag, TimeSpan interval)
        {
            _lag = lag;
            _interval = interval;
            Receive<Tick>(_ =>
            {
                _lag.Measured(Stopwatch.GetElapsedTime(_dueTimestamp));
                Arm();
            });
        }

        public ITimerScheduler Timers { get; set; } = null!;

        protected override void PreStart() => Arm();

        private void Arm()
        {
            _dueTimestamp = Stopwatch.GetTimestamp() + (long)(_interval.TotalSeconds * Stopwatch.Frequency);
            // Due once the scheduler's own tick has passed too, so a probe on time does not read as late by the tick.
            _lag.Due(_dueTimestamp + (long)(0.05 * Stopwatch.Frequency));
            Timers.StartSingleTimer(Tick.Instance, Tick.Instance, _interval);
        }
    }
}

public sealed class DispatcherLagProvider : ExtensionIdProvider<DispatcherLag>
{
    public override DispatcherLag CreateExtension(ExtendedActorSystem system)
    {
        var lag = new DispatcherLag();
        var config = system.Settings.Config;
        lag.Start(system, config.HasPath("cpns.load.lag-probe-interval")
            ? config.GetTimeSpan("cpns.load.lag-probe-interval")
            : TimeSpan.FromMilliseconds(100));
        return lag;
    }
}
