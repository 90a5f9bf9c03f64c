using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Cpns.Actors.Protocol;

/// <summary>
/// Canonical bytes for signing: a domain label, then each field length-prefixed, so no two different field
/// lists can produce the same bytes.
/// </summary>
public sealed class Transcript
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    public Transcript(string domain) => Add(domain);

    public Transcript Add(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        Prefix(count);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(count));
        _buffer.Advance(count);
        return this;
    }

    public Transcript Add(ReadOnlySpan<byte> value)
    {
        Prefix(value.Length);
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
        return this;
    }

    public Transcript Add(Octets value) => Add(value.Span);

    public Transcript Add(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
        return this;
    }

    public ReadOnlySpan<byte> Bytes => _buffer.WrittenSpan;

    private void Prefix(int length)
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer.GetSpan(4), length);
        _buffer.Advance(4);
    }
}
