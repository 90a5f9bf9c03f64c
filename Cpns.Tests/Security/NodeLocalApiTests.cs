using Cpns.Actors.Gateway;
using System.Collections.Concurrent;
using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Serialization;
using Cpns.Actors;
using Cpns.Actors.Distributed;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>
/// The node-local API never crosses a process boundary. A server node runs on real TLS on 127.0.0.1; the attacker is a
/// process with a valid node certificate of the deployment but no entity credential, and it writes the messages by
/// hand under the protocol serializer's id and type-name manifests. Node-local commands do not arrive, whatever the
/// bytes; a protocol request outside a session is refused with a typed answer; nothing changes.
/// </summary>
public sealed class NodeLocalApiTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly TempFolder _pki = new("cpns-pki");
    private readonly ActorSystem _node;
    private readonly ConcurrentQueue<string> _dropped = new();

    public NodeLocalApiTests()
    {
        var transport = NodeTransport.LoadOrIssue(_pki.File("tls"), "server", createAuthority: true).Transport;
        _node = RemoteSystems.Start(transport, ConfigurationFactory.ParseString("akka.actor.serialize-messages = off")
            .WithFallback(CpnsTestKit.Config()));
        _node.ActorOf(Props.Create(() => new DropWatcher(_dropped)));
    }

    public void Dispose()
    {
        _node.Terminate().Wait(TimeSpan.FromSeconds(10));
        _pki.Dispose();
    }

    [Fact]
    public void Every_node_local_type_is_refused_by_serialization_in_both_directions()
    {
        var localTypes = typeof(INodeLocal).Assembly.GetTypes()
            .Where(t => typeof(INodeLocal).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false }).ToList();
        Assert.Contains(typeof(LocalRequest), localTypes);
        foreach (var named in new[]
                 {
                     typeof(IssueCredentials), typeof(RevokeCredential), typeof(GatewayPlaced), typeof(PneAttached),
                     typeof(ServerAttached), typeof(TrustSigner), typeof(DeliverGroupKey), typeof(ExpectGroupKey),
                     typeof(DecryptContent), typeof(SealForGroup), typeof(DmCommand), typeof(ChargeUsage), typeof(GetInventory),
                     typeof(QueryUsage), typeof(GetStatement), typeof(ListGroups), typeof(ExportGroupKey), typeof(DeliverContent),
                     // What one function of an entity tells another, and what the host tells a device or a PN GW.
                     typeof(KmcKeyRequest), typeof(OsgKeyRequest), typeof(RequestGroupKey), typeof(RevokeGroupKey), typeof(CredentialsIssued),
                     typeof(DeliverToPne), typeof(PneReachability), typeof(DropGroupKeys), typeof(SetGatewayPolicy), typeof(TakeOverPn),
                     typeof(DeregisterDevice), typeof(Sleep), typeof(MoveToGateway), typeof(UpdateCapabilities), typeof(SendContent),
                 })
            Assert.Contains(named, localTypes);

        foreach (var type in localTypes)
        {
            Assert.DoesNotContain(type, ProtocolSerializer.ProtocolTypes);
            var serializer = _node.Serialization.FindSerializerForType(type);
            Assert.IsType<NodeLocalSerializer>(serializer);
            Assert.Throws<SerializationException>(() => serializer.ToBinary(System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(type)));
            Assert.Throws<SerializationException>(() => ((SerializerWithStringManifest)serializer).FromBinary("{}"u8.ToArray(), type.Name));
            var protocol = (ProtocolSerializer)_node.Serialization.FindSerializerForType(typeof(GroupNotice));
            Assert.Throws<SerializationException>(() => protocol.FromBinary("{}"u8.ToArray(), type.Name));
        }
    }

    [Fact]
    public async Task Forged_node_local_commands_from_a_certified_process_arrive_nowhere_and_change_nothing()
    {
        var secrets = ServerSecrets.Generate("cpns-server");
        var settings = CpnsSettings.From(_node);
        var server = await Deployment.EndpointsOf(Deployment.StartServer(_node, secrets, settings), Patience);
        var tokens = await Deployment.ProvisionAsync(server.Registry, [("g1", EntityKind.PnGateway), ("p1", EntityKind.Pne)], Patience);
        var gateway = Deployment.StartGateway(_node, EntityIdentity.Generate("g1", EntityKind.PnGateway), secrets.TrustAnchor,
            server.Registry, settings, enrolmentToken: tokens["g1"]);
        var pne = Deployment.StartPne(_node, EntityIdentity.Generate("p1", EntityKind.Pne), secrets.TrustAnchor, gateway, settings,
            enrolmentToken: tokens["p1"]);
        Inventory before = null!;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        do
            before = await server.Registry.Ask<Inventory>(GetInventory.Instance, Patience);
        while (before.Pnes.Count == 0 && clock.Elapsed < Patience && await Task.Delay(20).ContinueWith(_ => true));
        Assert.Single(before.Pnes);
        Assert.IsType<GroupAccepted>(await server.Smf.Ask<object>(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])),
            Patience));

        // The attacker: a valid node certificate of this deployment, its own hand-written serializer under id 117.
        var certified = NodeTransport.LoadOrIssue(_pki.File("tls"), "intruder", createAuthority: false).Transport;
        using var attacker = RemoteSystems.Start(certified, ConfigurationFactory.ParseString($$"""
            akka.actor.serializers.forge = "{{typeof(ForgingSerializer).AssemblyQualifiedName}}"
            akka.actor.serialization-bindings { "System.Object" = forge }
            akka.actor.serialization-identifiers { "{{typeof(ForgingSerializer).AssemblyQualifiedName}}" = 117 }
            """));
        var address = ((ExtendedActorSystem)_node).Provider.DefaultAddress;
        ActorSelection At(IActorRef actor) => attacker.ActorSelection(new RootActorPath(address) / actor.Path.Elements);

        var forged = new (IActorRef To, object Message)[]
        {
            (server.Registry, GetInventory.Instance),
            (server.Smf, ListGroups.Instance),
            (server.Registry, new RevokeCredential("p1", "forged")),
            (server.Smf, new LocalRequest(new AddMember("grp", "operator", "intruder"))),
            (server.Delivery, new DeliverContent("d1", "ace:x", "svc", "grp", Octets.Own([1, 2, 3]))),
            (server.Usage, new QueryUsage()),
            (gateway, new SetGatewayPolicy(AcceptBridges: true, AgreeToHandover: true)),
            (gateway, new TakeOverPn("g1", gateway)),
            (pne, new DeregisterDevice("p1")),
            (pne, new Sleep("p1")),
        };
        var answers = attacker.ActorOf(Props.Create(() => new Collector()));
        foreach (var (to, message) in forged)
            At(to).Tell(message, answers);
        // A protocol request, but outside any session: it arrives and is refused.
        // (The attacker's own serializer reads the answer back as plain JSON.)
        var refusal = await At(server.Smf).Ask<JsonElement>(new CreateGroup("evil", "operator", DeliveryMode.Push, ["p1"]), Patience);

        Assert.Equal(nameof(GroupError.NotAuthorized), refusal.GetProperty(nameof(GroupRejected.Error)).GetString());
        clock.Restart();
        while (_dropped.Count < forged.Length && clock.Elapsed < Patience)
            await Task.Delay(20);
        Assert.Equal(forged.Select(f => f.Message.GetType().Name).Order(), _dropped.Order());
        Assert.Empty(await answers.Ask<List<object>>("collected", Patience));

        var after = await server.Registry.Ask<Inventory>(GetInventory.Instance, Patience);
        Assert.Equal(before.Pnes.Select(p => p.RegistrationId), after.Pnes.Select(p => p.RegistrationId));
        var group = await server.Smf.Ask<GroupState>(new GetGroup("grp"), Patience);
        Assert.Equal(["p1"], group.Members);
        Assert.False((await server.Smf.Ask<GroupState>(new GetGroup("evil"), Patience)).Exists);
        Assert.True((await pne.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Patience)).Registered);
    }

    /// <summary>What the node logs when bytes off the wire do not deserialize (the message is dropped there).</summary>
    private sealed class DropWatcher : ReceiveActor
    {
        public DropWatcher(ConcurrentQueue<string> dropped)
        {
            Context.System.EventStream.Subscribe(Self, typeof(LogEvent));
            Receive<LogEvent>(e =>
            {
                var text = e.Message?.ToString() + " " + e.Cause;
                var match = System.Text.RegularExpressions.Regex.Match(text, "unknown CPNS manifest '([A-Za-z]+)'");
                if (match.Success)
                    dropped.Enqueue(match.Groups[1].Value);
            });
        }
    }

    private sealed class Collector : ReceiveActor
    {
        public Collector()
        {
            var seen = new List<object>();
            Receive<string>(s => s == "collected", _ => Sender.Tell(seen.ToList()));
            ReceiveAny(seen.Add);
        }
    }
}

/// <summary>What an attacker writes by hand: any object as JSON, under the protocol serializer's id and a type-name manifest.</summary>
public sealed class ForgingSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private readonly JsonSerializerOptions _options = ProtocolSerializer.CreateOptions(system);

    public override int Identifier => 117;

    public override string Manifest(object o) => o.GetType().Name;

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _options);

    public override object FromBinary(byte[] bytes, string manifest) =>
        JsonSerializer.Deserialize<JsonElement>(bytes, _options);
}
