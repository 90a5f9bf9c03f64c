using Cpns.Actors.Server;
using System.Diagnostics;
using System.Security.Cryptography;
using Akka.Actor;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;

namespace Cpns.Actors.Benchmarks;

public sealed record RekeyMeasurement(int Members, string Scheme, double RekeyMicros, int Bytes);

/// <summary>
/// The key manager's cost of one membership-change rekey — making the new keys, wrapping them, and encoding the
/// rekey message as it goes on the wire — for per-member wrapping ("flat") and the logical key hierarchy
/// ("lkh"), at the same group sizes in the same run. Joins and leaves alternate so the size stays put. Signing the
/// epoch announcement (once per epoch in either scheme) is left out of both.
/// </summary>
public static class RekeyBenchmark
{
    public static IReadOnlyList<RekeyMeasurement> Run(IReadOnlyList<int> sizes, int warmup, int repetitions,
        IProgress<(int Members, string Scheme)>? progress = null)
    {
        var results = new List<RekeyMeasurement>();
        foreach (var size in sizes)
        {
            progress?.Report((size, "flat"));
            results.Add(Flat(size, warmup, repetitions));
            progress?.Report((size, "lkh"));
            results.Add(Lkh(size, warmup, repetitions));
        }

        return results;
    }

    private static RekeyMeasurement Flat(int size, int warmup, int repetitions)
    {
        // A rekey wraps the new key once per member, ephemeral-static as the live code does (the static-static part is
        // cached from registration, as it is there).
        var pairwise = new PairwiseKeys(EntityIdentity.Generate("bench-server", EntityKind.Server));
        var members = Members(size + warmup + repetitions).ToList();
        var current = members.Take(size).ToList();
        foreach (var (id, agreement) in members)
            pairwise.SealFor(id, agreement, [], []);
        var next = size;
        long epoch = 0;
        var (times, bytes) = Measure(warmup, repetitions, op =>
        {
            if (op % 2 == 0)
                current.Add(members[next++]);
            else
                current.RemoveAt(op % current.Count);
            var key = GroupKey.Generate("bench", ++epoch);
            var wraps = current.Select(m => new MemberWrap(m.Id, key.WrapFor(pairwise, m.Id, m.Agreement))).ToList();
            key.Dispose();
            return ProtocolSerializer.Encode(new FlatRekeyMessage("bench", epoch, wraps)).Length;
        });
        return new RekeyMeasurement(size, "flat", Median(times), (int)Median(bytes));
    }

    /// <summary>
    /// The live code: the server CSKMF's <see cref="LkhKeyTrees"/> with PN GWs as leaves (random leaf keys), node keys
    /// sealed under a KEK for the journal, the group key wrapped under the new root, the <see cref="GroupRekeyBroadcast"/>
    /// on the wire, and for a join the joiner's path sealed for it alone (its bytes are not counted: it goes to one PN GW).
    /// </summary>
    private static RekeyMeasurement Lkh(int size, int warmup, int repetitions)
    {
        var manager = EntityIdentity.Generate("bench-server", EntityKind.Server);
        var pairwise = new PairwiseKeys(manager);
        var trees = new LkhKeyTrees(KeyEncryptionKey.Generate(), threshold: 0);
        var joiners = warmup + repetitions;
        var members = Members(size + joiners).ToList();
        foreach (var (id, agreement) in members)
            pairwise.SealFor(id, agreement, [], []);
        var announcement = EpochAnnouncement.Sign(manager, "bench", 1, GroupKey.Generate("bench", 1).KeyCheck);

        long epoch = 1;
        var first = GroupKey.Generate("bench", epoch);
        trees.Advance("bench", epoch, first,
            members.Take(size).Select(m => new KeyDeliveryTarget(m.Id, ActorRefs.Nobody, m.Agreement, SecurityLevel.High, [])).ToList());
        first.Dispose();
        var inTree = members.Take(size).Select(m => m.Id).ToList();
        var next = size;
        var random = new Random(7);
        var (times, bytes) = Measure(warmup, repetitions, op =>
        {
            var key = GroupKey.Generate("bench", ++epoch);
            LkhEpochRecord record;
            if (op % 2 == 0)
            {
                var (id, agreement) = members[next++];
                record = trees.Change("bench", epoch, key, [], [(id, agreement)]);
                trees.PathFor("bench", id, pairwise, id, agreement);
                inTree.Add(id);
            }
            else
            {
                var pick = random.Next(inTree.Count);
                var leaving = inTree[pick];
                inTree[pick] = inTree[^1];
                inTree.RemoveAt(inTree.Count - 1);
                record = trees.Change("bench", epoch, key, [leaving], []);
            }

            var broadcast = new GroupRekeyBroadcast("bench", epoch, manager.DeviceId, record.BaseTreeEpoch, record.TreeEpoch,
                record.Steps, record.KeyUnderRoot, key.KeyCheck, announcement with { Epoch = epoch });
            key.Dispose();
            return ProtocolSerializer.Encode(broadcast).Length;
        });
        return new RekeyMeasurement(size, "lkh", Median(times), (int)Median(bytes));
    }

    private static IEnumerable<(string Id, Octets Agreement)> Members(int count) => Enumerable.Range(0, count)
        .Select(i => ($"m{i}", EntityIdentity.Generate($"m{i}", EntityKind.PnGateway).PublicKeys.Agreement));

    private static (double[] Micros, double[] Bytes) Measure(int warmup, int repetitions, Func<int, int> rekey)
    {
        for (var i = 0; i < warmup; i++)
            rekey(i);
        var micros = new double[repetitions];
        var bytes = new double[repetitions];
        for (var i = 0; i < repetitions; i++)
        {
            var start = Stopwatch.GetTimestamp();
            bytes[i] = rekey(warmup + i);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        return (micros, bytes);
    }

    public static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1
            ? sorted[sorted.Length / 2]
            : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
