using System.Diagnostics.Metrics;

namespace Cpns.Actors.Common;

/// <summary>
/// The enabler's instruments (one meter, <c>Cpns</c>); an exporter (the server node's Prometheus endpoint) reads them.
/// Tags stay low-cardinality: kinds, modes, reasons and outcomes, never entity or group ids.
/// </summary>
public static class CpnsMetrics
{
    public const string MeterName = "Cpns";

    private static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> Registrations = Meter.CreateCounter<long>("cpns.registrations",
        description: "PN GWs and PNEs registered by the server (tag kind)");

    public static readonly Counter<long> RegistrationsRefused = Meter.CreateCounter<long>("cpns.registrations.refused",
        description: "Registrations the server refused (tag reason)");

    private static long _gatewayLeases;
    private static long _pneLeases;

    // A gauge read when scraped (an up-down counter would miss what was registered before the exporter started).
    private static readonly ObservableGauge<long> Leases = Meter.CreateObservableGauge("cpns.leases", () => new[]
    {
        new Measurement<long>(Interlocked.Read(ref _gatewayLeases), Tag("kind", "pn-gateway")),
        new Measurement<long>(Interlocked.Read(ref _pneLeases), Tag("kind", "pne")),
    }, description: "Registration leases the server holds now (tag kind)");

    /// <summary>The registry took (positive) or let go of (negative) leases of PN GWs or PNEs.</summary>
    public static void LeasesChanged(bool gateways, long delta) => Interlocked.Add(ref gateways ? ref _gatewayLeases : ref _pneLeases, delta);

    public static readonly Counter<long> Rekeys = Meter.CreateCounter<long>("cpns.rekeys",
        description: "Group key epochs issued by the server's CSKMF (tag mode)");

    public static readonly Histogram<double> KeyDeliveryLatency = Meter.CreateHistogram<double>("cpns.key_delivery.duration",
        unit: "ms", description: "From an epoch's issue to a PN GW's acknowledgement of its key (tag mode: push or pull)");

    public static readonly Counter<long> KeyPulls = Meter.CreateCounter<long>("cpns.key_pulls",
        description: "Group key requests answered by the server's CSKMF (tag outcome)");

    public static readonly Counter<long> EnvelopesRefused = Meter.CreateCounter<long>("cpns.envelopes.refused",
        description: "Signed envelopes refused by a receiving function (tag reason)");

    public static readonly Counter<long> BusyAnswers = Meter.CreateCounter<long>("cpns.busy_answers",
        description: "Requests a function that is behind answered \"busy, retry after\" instead of doing them (tag function)");

    public static readonly Counter<long> Retries = Meter.CreateCounter<long>("cpns.retries",
        description: "Requests sent again because no answer came (tag function)");

    public static readonly Counter<long> DirectorySearches = Meter.CreateCounter<long>("cpns.directory.searches",
        description: "Service searches answered by the server's directory (tag outcome)");

    public static readonly Counter<long> ContentDeliveries = Meter.CreateCounter<long>("cpns.content.deliveries",
        description: "Content deliveries to service groups (tag outcome: accepted or refused)");

    public static readonly Counter<long> ContentBytes = Meter.CreateCounter<long>("cpns.content.bytes", unit: "By",
        description: "Ciphertext bytes of accepted content deliveries, once per PN GW they were sent to");

    public static KeyValuePair<string, object?> Tag(string name, object? value) => new(name, value);
}
