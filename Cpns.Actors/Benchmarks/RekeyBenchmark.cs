using System.Diagnostics;
using System.Security.Cryptography;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;

namespace Cpns.Actors.Benchmarks;

/// <summary>One member's copy of a flat rekey: the new group key wrapped under its pairwise key.</summary>
public sealed record MemberWrap(string MemberId, Octets Wrapped) : ICpnsMessage;

/// <summary>The rekey message of the flat scheme: one wrap per member.</summary>
public sealed record FlatRekeyMessage(string GroupId, long Epoch, IReadOnlyList<MemberWrap> Wraps) : ICpnsMessage, IWithGroupId;

public sealed record RekeyMeasurement(int Members, string Scheme, double RekeyMicros, int Bytes);

/// <summary>
/// The key manager's cost of one membership-change rekey — making the new keys, wrapping them, and encoding the
/// rekey message as it goes on the wire — for per-member wrapping ("flat") and the logical key hierarchy
/// ("lkh"), at the same group sizes in the same run. Joins and leaves alternate so the size stays put.
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
        // The key manager keeps each member's pairwise key; a rekey wraps the new key once per member.
        var members = new List<(string Id, byte[] Key)>(size + 1);
        for (var i = 0; i < size; i++)
            members.Add(($"m{i}", RandomNumberGenerator.GetBytes(Aead.KeySize)));
        var next = size;
        long epoch = 0;
        var (times, bytes) = Measure(warmup, repetitions, op =>
        {
            if (op % 2 == 0)
                members.Add(($"m{next++}", RandomNumberGenerator.GetBytes(Aead.KeySize)));
            else
                members.RemoveAt(op % members.Count);
            var key = GroupKey.Generate("bench", ++epoch);
            var wraps = members.Select(m => new MemberWrap(m.Id, key.WrapUnder(m.Key, m.Id))).ToList();
            key.Destroy();
            return ProtocolSerializer.Encode(new FlatRekeyMessage("bench", epoch, wraps)).Length;
        });
        return new RekeyMeasurement(size, "flat", Median(times), (int)Median(bytes));
    }

    private static RekeyMeasurement Lkh(int size, int warmup, int repetitions)
    {
        var tree = new LkhTree("bench");
        long epoch = 0;
        for (var i = 0; i < size; i++)
            tree.Join($"m{i}", RandomNumberGenerator.GetBytes(Aead.KeySize), ++epoch);
        var next = size;
        var random = new Random(7);
        var (times, bytes) = Measure(warmup, repetitions, op =>
        {
            var rekey = op % 2 == 0
                ? tree.Join($"m{next++}", RandomNumberGenerator.GetBytes(Aead.KeySize), ++epoch)
                : tree.Leave(AnyMember(tree, next, random), ++epoch);
            return ProtocolSerializer.Encode(rekey).Length;
        });
        return new RekeyMeasurement(size, "lkh", Median(times), (int)Median(bytes));
    }

    private static string AnyMember(LkhTree tree, int next, Random random)
    {
        while (true)
        {
            var candidate = $"m{random.Next(next)}";
            if (tree.Contains(candidate))
                return candidate;
        }
    }

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
