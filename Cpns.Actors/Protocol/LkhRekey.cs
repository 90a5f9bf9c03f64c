using System.Buffers.Binary;

namespace Cpns.Actors.Protocol;

/// <summary>
/// What every member of an LKH group receives on a membership change: the size of the new tree, which leaves
/// moved, and the new node keys wrapped bottom-up. O(log n) wraps, packed as 8 + 60 bytes each.
/// </summary>
public sealed record LkhRekey(string GroupId, long Epoch, int Size, IReadOnlyList<LkhMove> Moves, Octets PackedWraps)
    : ICpnsMessage, IWithGroupId
{
    public const int WrapBytes = 8 + SealedLayout.Overhead + SealedLayout.KeySize;

    public int WrapCount => PackedWraps.Length / WrapBytes;

    public IEnumerable<LkhWrap> Wraps()
    {
        for (var offset = 0; offset < PackedWraps.Length; offset += WrapBytes)
        {
            var span = PackedWraps.Span.Slice(offset, WrapBytes);
            yield return new LkhWrap(BinaryPrimitives.ReadInt32BigEndian(span), BinaryPrimitives.ReadInt32BigEndian(span[4..]),
                Octets.CopyFrom(span[8..]));
        }
    }

    public static Octets Pack(IReadOnlyList<LkhWrap> wraps)
    {
        var packed = new byte[wraps.Count * WrapBytes];
        for (var i = 0; i < wraps.Count; i++)
        {
            var span = packed.AsSpan(i * WrapBytes, WrapBytes);
            BinaryPrimitives.WriteInt32BigEndian(span, wraps[i].Node);
            BinaryPrimitives.WriteInt32BigEndian(span[4..], wraps[i].Under);
            wraps[i].Ciphertext.Span.CopyTo(span[8..]);
        }

        return Octets.Own(packed);
    }
}
