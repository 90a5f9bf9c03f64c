using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Cpns.Actors.Serialization;

/// <summary>Bound to <see cref="Protocol.INodeLocal"/>: refuses to put node-local messages on the wire, or to take them off it.</summary>
public sealed class NodeLocalSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int SerializerId = 118;

    public override int Identifier => SerializerId;

    public override string Manifest(object o) => throw Refusal(o.GetType().Name);

    public override byte[] ToBinary(object obj) => throw Refusal(obj.GetType().Name);

    public override object FromBinary(byte[] bytes, string manifest) => throw Refusal(manifest);

    private static SerializationException Refusal(string what) =>
        new($"{what} belongs to the node-local API: it never crosses a process boundary");
}
