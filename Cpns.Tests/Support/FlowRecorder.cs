using Akka.Actor;
using Akka.TestKit;
using Cpns.Actors.Protocol;

namespace Cpns.Tests.Support;

/// <summary>Collects the flow-trace steps published on the event stream, in the order they were sent.</summary>
public sealed class FlowRecorder
{
    private readonly TestProbe _probe;
    private readonly List<FlowStep> _steps = new();

    public FlowRecorder(TestKitBase kit)
    {
        _probe = kit.CreateTestProbe();
        kit.Sys.EventStream.Subscribe(_probe.Ref, typeof(FlowStep));
    }

    public IReadOnlyList<FlowStep> Steps => _steps;

    /// <summary>Receives steps until <paramref name="done"/> holds for the steps so far.</summary>
    public async Task<IReadOnlyList<FlowStep>> UntilAsync(Func<IReadOnlyList<FlowStep>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(_steps))
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new TimeoutException("flow did not complete; saw:\n" + string.Join("\n", _steps));
            _steps.Add(await _probe.ExpectMsgAsync<FlowStep>(remaining));
        }

        return _steps;
    }

    /// <summary>Drains what arrives within <paramref name="quiet"/>; used to prove no further step happens.</summary>
    public async Task DrainAsync(TimeSpan quiet)
    {
        while (true)
        {
            var step = await _probe.ReceiveOneAsync(quiet) as FlowStep;
            if (step is null)
                return;
            _steps.Add(step);
        }
    }

    public static IReadOnlyList<(int Step, string From, string To)> Shape(IEnumerable<FlowStep> steps) =>
        steps.Select(s => (s.Step, s.From, s.To)).ToList();
}
