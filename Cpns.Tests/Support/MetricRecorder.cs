using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Cpns.Tests.Support;

/// <summary>Sums what one of the enabler's counters records while it lives, per value of one tag (e.g. reason).</summary>
public sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _byTag = new();

    public MetricRecorder(string instrument, string tag)
    {
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Meter.Name == Cpns.Actors.Common.CpnsMetrics.MeterName && published.Name == instrument)
                listener.EnableMeasurementEvents(published);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var pair in tags)
            {
                if (pair.Key == tag)
                    _byTag.AddOrUpdate(pair.Value?.ToString() ?? "", value, (_, sum) => sum + value);
            }
        });
        _listener.Start();
    }

    public long this[string tagValue] => _byTag.GetValueOrDefault(tagValue);

    public void Dispose() => _listener.Dispose();
}
