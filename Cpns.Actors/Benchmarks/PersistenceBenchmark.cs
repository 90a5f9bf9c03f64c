using System.Diagnostics;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Benchmarks;

public sealed record PersistenceMeasurement(int BatchSize, int Registrations, int Events, double Seconds, double RegistrationsPerSecond);

/// <summary>
/// How many PNE registrations per second the configured journal makes durable when the registry persists them
/// the way it does — one event per batch a PN GW forwards — against one event (one journal round trip) per
/// registration, in the same run on the same database.
/// </summary>
public static class PersistenceBenchmark
{
    private sealed record WriteAll(int Registrations, int BatchSize) : INoSerializationVerificationNeeded;

    private sealed record Written(double Seconds) : INoSerializationVerificationNeeded;

    /// <summary>Persists the registrations in batches, each batch only after the previous one is durable.</summary>
    private sealed class RegistrationWriter : UntypedPersistentActor
    {
        private readonly string _persistenceId = $"bench-registrations-{Guid.NewGuid():N}";
        private readonly PublicKeys _keys = EntityIdentity.Generate("bench", EntityKind.Pne).PublicKeys;

        public RegistrationWriter(CpnsSettings settings)
        {
            if (!string.IsNullOrEmpty(settings.Persistence.JournalPlugin))
                JournalPluginId = settings.Persistence.JournalPlugin;
        }

        public override string PersistenceId => _persistenceId;

        protected override void OnRecover(object message)
        {
        }

        protected override void OnCommand(object message)
        {
            if (message is not WriteAll write)
                return;
            var replyTo = Sender;
            var clock = Stopwatch.StartNew();
            var written = 0;
            void Next()
            {
                if (written >= write.Registrations)
                {
                    replyTo.Tell(new Written(clock.Elapsed.TotalSeconds));
                    return;
                }

                var count = Math.Min(write.BatchSize, write.Registrations - written);
                var records = Enumerable.Range(written, count).Select(i => new PneRecord($"p{i:D6}", "g0001", _keys,
                    DeviceCapabilities.Pne(), "5f3a9c", new PneEndpoints(ActorRefs.Nobody, ActorRefs.Nobody, ActorRefs.Nobody),
                    $"r-{i + 1}", 86400, 0)).ToList();
                written += count;
                Persist(new PnesRegisteredEvent("g0001", records, written), _ => Next());
            }

            Next();
        }
    }

    public static async Task<IReadOnlyList<PersistenceMeasurement>> RunAsync(ActorSystem system, CpnsSettings settings,
        int registrations, IReadOnlyList<int> batchSizes, IProgress<int>? progress = null)
    {
        // One throwaway write first, so table creation and connection setup are not measured.
        await Measure(system, settings, 10, 10);
        var results = new List<PersistenceMeasurement>();
        foreach (var batchSize in batchSizes)
        {
            progress?.Report(batchSize);
            var seconds = await Measure(system, settings, registrations, batchSize);
            results.Add(new PersistenceMeasurement(batchSize, registrations, (registrations + batchSize - 1) / batchSize, seconds,
                registrations / seconds));
        }

        return results;
    }

    private static async Task<double> Measure(ActorSystem system, CpnsSettings settings, int registrations, int batchSize)
    {
        var writer = system.ActorOf(Props.Create(typeof(RegistrationWriter), settings));
        try
        {
            var written = await writer.Ask<Written>(new WriteAll(registrations, batchSize), TimeSpan.FromMinutes(30));
            return written.Seconds;
        }
        finally
        {
            system.Stop(writer);
        }
    }
}
