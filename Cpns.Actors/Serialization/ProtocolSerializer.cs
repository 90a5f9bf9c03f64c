using System.Collections.Frozen;
using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Serialization;

/// <summary>
/// The protocol's own serializer: every <see cref="ICpnsMessage"/> (commands, replies, notices, persisted
/// events) as UTF-8 JSON, with a stable manifest per record type (<see cref="ProtocolManifests"/>: the string, not the
/// type's name, is what journals hold). Actor references travel as their serialized paths, byte strings as base64. An unknown manifest is a <see cref="SerializationException"/>.
/// </summary>
public sealed class ProtocolSerializer : SerializerWithStringManifest
{
    public const int SerializerId = 117;

    private static readonly FrozenDictionary<Type, string> ManifestByType = BuildManifests();

    private static readonly FrozenDictionary<string, Type> TypeByManifest =
        ManifestByType.ToFrozenDictionary(kv => kv.Value, kv => kv.Key);

    private readonly JsonSerializerOptions _options;

    public ProtocolSerializer(ExtendedActorSystem system) : base(system)
    {
        _options = CreateOptions(system);
    }

    public override int Identifier => SerializerId;

    public static IReadOnlyCollection<Type> ProtocolTypes => ManifestByType.Keys;

    public static JsonSerializerOptions CreateOptions(ExtendedActorSystem? system)
    {
        var options = new JsonSerializerOptions
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            MaxDepth = 32,
            // A null where the record says "never null", or a missing field the record requires, is malformed input:
            // refused here, before any receiver sees a half-built record.
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.Converters.Add(new OctetsJsonConverter());
        if (system is not null)
            options.Converters.Add(new ActorRefJsonConverter(system));
        return options;
    }

    private static readonly JsonSerializerOptions DetachedOptions = CreateOptions(null);

    /// <summary>The wire bytes of a message that holds no actor references (benchmarks, size accounting).</summary>
    public static byte[] Encode(ICpnsMessage message) =>
        JsonSerializer.SerializeToUtf8Bytes(message, message.GetType(), DetachedOptions);

    public override string Manifest(object o) =>
        ManifestByType.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new SerializationException($"{o.GetType()} is not a CPNS protocol message");

    public override byte[] ToBinary(object obj)
    {
        if (!ManifestByType.ContainsKey(obj.GetType()))
            throw new SerializationException($"{obj.GetType()} is not a CPNS protocol message");
        return JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _options);
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!TypeByManifest.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown CPNS manifest '{manifest}'");
        try
        {
            return JsonSerializer.Deserialize(bytes, type, _options)
                   ?? throw new SerializationException($"empty payload for '{manifest}'");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new SerializationException($"malformed payload for '{manifest}': {e.Message}", e);
        }
    }

    private static FrozenDictionary<Type, string> BuildManifests()
    {
        var byManifest = new Dictionary<string, Type>();
        var byType = new Dictionary<Type, string>();
        foreach (var (manifest, type) in ProtocolManifests.All)
        {
            if (!byManifest.TryAdd(manifest, type))
                throw new InvalidOperationException(
                    $"two protocol types share the manifest '{manifest}': {byManifest[manifest]} and {type}");
            if (!byType.TryAdd(type, manifest))
                throw new InvalidOperationException($"{type} has two manifests: '{byType[type]}' and '{manifest}'");
        }

        var unlisted = typeof(ICpnsMessage).Assembly.GetTypes()
            .Where(t => typeof(ICpnsMessage).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Where(t => !byType.ContainsKey(t))
            .Select(t => t.FullName)
            .ToList();
        if (unlisted.Count > 0)
            throw new InvalidOperationException(
                $"protocol types without a manifest in {nameof(ProtocolManifests)}: {string.Join(", ", unlisted)}");
        return byType.ToFrozenDictionary();
    }
}

internal sealed class ActorRefJsonConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
{
    public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var path = reader.GetString();
        return string.IsNullOrEmpty(path) ? ActorRefs.Nobody : system.Provider.ResolveActorRef(path);
    }

    public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options)
    {
        if (value.IsNobody())
            writer.WriteStringValue("");
        else
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}
