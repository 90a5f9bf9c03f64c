using Cpns.Actors.Protocol;
using System.Diagnostics;

namespace Cpns.Actors.Security;

/// <summary>
/// The process's own count of public-key and AEAD operations (an increment each, cheap next to the operation), and their
/// unit cost measured on this machine: together the crypto floor of a run — the least time its cryptography alone needs.
/// </summary>
public static class CryptoOperations
{
    private static long _signatures;
    private static long _verifications;
    private static long _agreements;
    private static long _aead;

    internal static void Signed() => Interlocked.Increment(ref _signatures);

    internal static void Verified() => Interlocked.Increment(ref _verifications);

    internal static void Agreed() => Interlocked.Increment(ref _agreements);

    internal static void Sealed() => Interlocked.Increment(ref _aead);

    public sealed record Counts(long Signatures, long Verifications, long Agreements, long Aead)
    {
        public static Counts operator -(Counts after, Counts before) =>
            new(after.Signatures - before.Signatures, after.Verifications - before.Verifications, after.Agreements - before.Agreements,
                after.Aead - before.Aead);
    }

    public static Counts Now() =>
        new(Interlocked.Read(ref _signatures), Interlocked.Read(ref _verifications), Interlocked.Read(ref _agreements), Interlocked.Read(ref _aead));

    /// <summary>
    /// Microseconds one operation of each kind takes here, measured with the enabler's own code: the fastest of several
    /// rounds, since whatever else the process does at start-up only ever makes a round slower.
    /// </summary>
    public sealed record UnitCosts(double SignMicros, double VerifyMicros, double AgreeMicros, double AeadMicros)
    {
        public double FloorSeconds(Counts counts, int cores) =>
            (counts.Signatures * SignMicros + counts.Verifications * VerifyMicros + counts.Agreements * AgreeMicros + counts.Aead * AeadMicros)
            / 1e6 / Math.Max(1, cores);
    }

    public static UnitCosts Measure(int perRound = 40, int rounds = 15)
    {
        var before = Now();
        var identity = EntityIdentity.Generate("floor-a", Protocol.EntityKind.Pne);
        var peer = EntityIdentity.Generate("floor-b", Protocol.EntityKind.Pne);
        var message = new byte[200];
        var signature = identity.Sign(message);
        var key = VerificationKey.TryCreate(identity.PublicKeys.Signing)!;
        var aeadKey = new byte[SealedLayout.KeySize];
        var costs = new UnitCosts(
            Fastest(perRound, rounds, () => identity.Sign(message)),
            Fastest(perRound, rounds, () => key.Verify(message, signature)),
            Fastest(perRound, rounds, () => identity.Agree(peer.PublicKeys.Agreement)),
            Fastest(perRound, rounds, () => Aead.Open(aeadKey, Aead.Seal(aeadKey, message, default), default)) / 2);
        // The measurement is not part of any run's count.
        var spent = Now() - before;
        Interlocked.Add(ref _signatures, -spent.Signatures);
        Interlocked.Add(ref _verifications, -spent.Verifications);
        Interlocked.Add(ref _agreements, -spent.Agreements);
        Interlocked.Add(ref _aead, -spent.Aead);
        return costs;
    }

    private static double Fastest(int perRound, int rounds, Action operation)
    {
        // Long enough for the JIT to have compiled the operation at full optimization before it is timed.
        var warmup = Stopwatch.StartNew();
        while (warmup.ElapsedMilliseconds < 150)
            operation();
        var times = new double[rounds];
        for (var r = 0; r < rounds; r++)
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < perRound; i++)
                operation();
            times[r] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / perRound;
        }

        return times.Min();
    }
}
