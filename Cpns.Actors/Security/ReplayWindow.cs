namespace Cpns.Actors.Security;

public enum ReplayVerdict
{
    Fresh,
    Replayed,
    TooOld,
}

/// <summary>
/// The sliding window of sequence numbers one receiver has accepted from one sender: the highest seen and a bitmap of the
/// <see cref="Size"/> below it. A number is fresh once; one older than the window is refused outright.
/// </summary>
public struct ReplayWindow
{
    public const int Size = 64;

    public long Highest { get; private set; }

    private ulong _seen;

    /// <summary>Accepts <paramref name="sequence"/> (and remembers it) or says why not.</summary>
    public ReplayVerdict Accept(long sequence)
    {
        if (sequence > Highest)
        {
            var shift = sequence - Highest;
            _seen = shift >= Size ? 1UL : (_seen << (int)shift) | 1UL;
            Highest = sequence;
            return ReplayVerdict.Fresh;
        }

        var age = Highest - sequence;
        if (age >= Size)
            return ReplayVerdict.TooOld;
        var bit = 1UL << (int)age;
        if ((_seen & bit) != 0)
            return ReplayVerdict.Replayed;
        _seen |= bit;
        return ReplayVerdict.Fresh;
    }
}
