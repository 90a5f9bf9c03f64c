using System.Security.Cryptography;

namespace Cpns.Actors.Protocol;

/// <summary>
/// An immutable byte string with value equality, so protocol records holding key material,
/// signatures or content compare by content and can be shared between actors safely.
/// </summary>
[Newtonsoft.Json.JsonConverter(typeof(OctetsNewtonsoftConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(OctetsJsonConverter))]
public sealed class Octets : IEquatable<Octets>
{
    public static readonly Octets Empty = new([]);

    private readonly byte[] _bytes;

    private Octets(byte[] bytes) => _bytes = bytes;

    public static Octets CopyFrom(ReadOnlySpan<byte> bytes) => new(bytes.ToArray());

    /// <summary>Takes ownership of <paramref name="bytes"/>; the caller must not change the array afterwards.</summary>
    public static Octets Own(byte[] bytes) => new(bytes);

    public static Octets FromBase64(string base64) => new(Convert.FromBase64String(base64));

    public int Length => _bytes.Length;

    public ReadOnlySpan<byte> Span => _bytes;

    public ReadOnlyMemory<byte> Memory => _bytes;

    public byte[] ToArray() => (byte[])_bytes.Clone();

    public string ToBase64() => Convert.ToBase64String(_bytes);

    public string ToHex() => Convert.ToHexStringLower(_bytes);

    public bool Equals(Octets? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    public override bool Equals(object? obj) => obj is Octets other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }

    public override string ToString() => $"Octets[{_bytes.Length}]";

    public static bool operator ==(Octets? left, Octets? right) => Equals(left, right);

    public static bool operator !=(Octets? left, Octets? right) => !Equals(left, right);
}

/// <summary>
/// Lets Akka's built-in JSON serializer carry <see cref="Octets"/> too (it handles journal-internal envelopes
/// when every message is verified with <c>serialize-messages = on</c>): base64, like the protocol serializer.
/// </summary>
internal sealed class OctetsNewtonsoftConverter : Newtonsoft.Json.JsonConverter<Octets>
{
    public override void WriteJson(Newtonsoft.Json.JsonWriter writer, Octets? value, Newtonsoft.Json.JsonSerializer serializer)
    {
        if (value is null)
            writer.WriteNull();
        else
            writer.WriteValue(value.ToBase64());
    }

    public override Octets? ReadJson(Newtonsoft.Json.JsonReader reader, Type objectType, Octets? existingValue,
        bool hasExistingValue, Newtonsoft.Json.JsonSerializer serializer) =>
        reader.Value is string base64 ? Octets.FromBase64(base64) : null;
}

/// <summary>Base64 in the protocol serializer's JSON.</summary>
internal sealed class OctetsJsonConverter : System.Text.Json.Serialization.JsonConverter<Octets>
{
    public override Octets Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert,
        System.Text.Json.JsonSerializerOptions options) =>
        Octets.Own(reader.GetBytesFromBase64());

    public override void Write(System.Text.Json.Utf8JsonWriter writer, Octets value,
        System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteBase64StringValue(value.Span);
}
