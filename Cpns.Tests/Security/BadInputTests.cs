using Cpns.Actors.Local;
using System.Runtime.Serialization;
using System.Text;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Bad input is a refusal, never a failure: mutated and random payloads of every protocol record are either a whole record
/// or a <see cref="SerializationException"/>; delivered to every function of a running network, they restart nothing and
/// change nothing.
/// </summary>
public sealed class BadInputTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private ProtocolSerializer Serializer => (ProtocolSerializer)Sys.Serialization.FindSerializerForType(typeof(GroupNotice));

    /// <summary>Deterministic mutations of one record's JSON: each field null, missing, mistyped; truncations; flipped bytes.</summary>
    private static IEnumerable<byte[]> Mutations(byte[] json, Random random)
    {
        var node = JsonNode.Parse(json);
        if (node is JsonObject record)
        {
            foreach (var name in record.Select(p => p.Key).ToList())
            {
                foreach (JsonNode? replacement in new JsonNode?[] { null, 123456789, "x", new JsonArray(), new JsonObject(), true })
                {
                    var mutated = (JsonObject)record.DeepClone();
                    mutated[name] = replacement?.DeepClone();
                    yield return Encoding.UTF8.GetBytes(mutated.ToJsonString());
                }

                var without = (JsonObject)record.DeepClone();
                without.Remove(name);
                yield return Encoding.UTF8.GetBytes(without.ToJsonString());
            }
        }

        for (var cut = 0; cut < json.Length; cut += Math.Max(1, json.Length / 7))
            yield return json[..cut];
        for (var i = 0; i < 8; i++)
        {
            var flipped = (byte[])json.Clone();
            flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
            yield return flipped;
        }

        yield return random.GetItems<byte>(Enumerable.Range(0, 256).Select(b => (byte)b).ToArray(), 64);
        yield return "null"u8.ToArray();
        yield return "[]"u8.ToArray();
    }

    [Fact]
    public void Every_mutation_of_every_protocol_record_is_a_whole_record_or_a_SerializationException()
    {
        var random = new Random(7);
        var refused = 0;
        var parsed = 0;
        foreach (var type in ProtocolSerializer.ProtocolTypes.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            var sample = Samples.Create(type, TestActor);
            var manifest = Serializer.Manifest(sample);
            foreach (var bytes in Mutations(Serializer.ToBinary(sample), random))
            {
                object back;
                try
                {
                    back = Serializer.FromBinary(bytes, manifest);
                }
                catch (SerializationException)
                {
                    refused++;
                    continue;
                }

                Assert.IsType(type, back);
                // Whatever parses is whole: it serializes again without a null where the record allows none.
                Serializer.ToBinary(back);
                parsed++;
            }
        }

        Output.WriteLine($"{ProtocolSerializer.ProtocolTypes.Count} record types: {refused} mutations refused, {parsed} parsed whole");
        Assert.True(refused > 10 * ProtocolSerializer.ProtocolTypes.Count, $"only {refused} refusals");
    }

    [Fact]
    public void A_null_payload_in_an_envelope_is_refused_by_the_serializer_before_any_guard_sees_it()
    {
        var envelope = SealAs(EntityIdentity.Generate("g9", EntityKind.PnGateway), new GroupKeyRequest("grp", 1, "g9"));
        var json = JsonNode.Parse(Serializer.ToBinary(envelope))!.AsObject();
        foreach (var field in new[] { "Payload", "Signature", "SenderId", "Channel", "Manifest" })
        {
            var mutated = (JsonObject)json.DeepClone();
            mutated[field] = null;
            var error = Assert.Throws<SerializationException>(() =>
                Serializer.FromBinary(Encoding.UTF8.GetBytes(mutated.ToJsonString()), Serializer.Manifest(envelope)));
            Assert.Contains(field, error.Message);
        }
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public async Task Garbage_to_every_function_of_a_running_network_restarts_nothing_and_changes_nothing(int seed)
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2"])));
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        var inventoryBefore = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        var groupsBefore = await Server.Smf.Ask<GroupList>(ListGroups.Instance, Timeout);

        var errors = CreateTestProbe();
        Sys.EventStream.Subscribe(errors.Ref, typeof(Error));
        var targets = await FunctionsAsync();
        Assert.True(targets.Count >= 20, $"only {targets.Count} functions found");

        var random = new Random(seed);
        var insider = Identities["g1"]; // a registered entity whose signature every function accepts
        var outsider = EntityIdentity.Generate("intruder", EntityKind.PnGateway);
        var payloadTypes = ProtocolSerializer.ProtocolTypes.Where(t => t != typeof(SignedEnvelope)).OrderBy(t => t.Name).ToList();
        var sent = 0;
        var attacker = CreateTestProbe();
        foreach (var target in targets)
        {
            foreach (var type in payloadTypes.OrderBy(_ => random.Next()).Take(12))
            {
                // Refs in the samples point at the attacker: a mutation that still parses, signed by the insider, is a valid
                // message of an entity every function trusts, and whatever it makes a function send goes to the attacker.
                var sample = Samples.Create(type, attacker.Ref);
                var bytes = Serializer.ToBinary(sample);
                var manifest = Serializer.Manifest(sample);
                foreach (var mutated in Mutations(bytes, random).Take(6))
                {
                    target.Tell(SignedBy(insider, manifest, mutated), attacker.Ref);
                    sent++;
                }

                target.Tell(SignedBy(outsider, manifest, bytes), attacker.Ref);
                target.Tell(SignedBy(insider, "NoSuchManifest", bytes), attacker.Ref);
                target.Tell(SignedBy(insider, manifest, bytes) with { Signature = Octets.Own(random.GetItems<byte>([1, 2, 3], 64)) },
                    attacker.Ref);
                sent += 3;
            }
        }

        // The session layer's own messages, made up: records of no session, handshakes from a stranger, steps of none.
        foreach (var target in targets)
        {
            Octets RandomOctets(int length) => Octets.Own(random.GetItems<byte>(Enumerable.Range(0, 256).Select(b => (byte)b).ToArray(), length));
            target.Tell(new SessionRecord(RandomOctets(16), random.NextInt64(1, 1000), nameof(GroupKeyRequest), RandomOctets(48)), attacker.Ref);
            target.Tell(new SessionInitiator(new SessionEnd(outsider), "cpns-server").Hello, attacker.Ref);
            target.Tell(new SessionConfirm(RandomOctets(16), RandomOctets(64)), attacker.Ref);
            target.Tell(new SessionAccept(insider.DeviceId, null, RandomOctets(32), RandomOctets(16), SessionSuite.X25519Ed25519Aes256GcmSha256,
                RandomOctets(64), RandomOctets(16)), attacker.Ref);
            target.Tell(new SessionRefused(RandomOctets(16), random.NextInt64(1, 1000), SessionRefusal.UnknownSession), attacker.Ref);
            sent += 5;
        }

        // Each function has handled everything sent to it once it answers an Identify sent after it.
        foreach (var target in targets)
            await target.Ask<ActorIdentity>(new Identify(target.Path.ToString()), Timeout);
        var refusals = new Dictionary<EnvelopeRejection, int>();
        var sessionRefusals = new Dictionary<SessionRefusal, int>();
        while (attacker.HasMessages)
        {
            switch (attacker.ReceiveOne(TimeSpan.Zero))
            {
                case EnvelopeRejected rejected:
                    refusals[rejected.Reason] = refusals.GetValueOrDefault(rejected.Reason) + 1;
                    break;
                case SessionRefused refused:
                    sessionRefusals[refused.Reason] = sessionRefusals.GetValueOrDefault(refused.Reason) + 1;
                    break;
            }
        }

        Output.WriteLine($"{sent} bad messages to {targets.Count} functions; typed refusals: " +
                         string.Join(", ", refusals.Select(r => $"{r.Key} {r.Value}")));
        Assert.True(refusals.GetValueOrDefault(EnvelopeRejection.Malformed) > 0);
        Assert.True(refusals.GetValueOrDefault(EnvelopeRejection.BadSignature) > 0);
        Output.WriteLine("session refusals: " + string.Join(", ", sessionRefusals.Select(r => $"{r.Key} {r.Value}")));
        Assert.True(sessionRefusals.GetValueOrDefault(SessionRefusal.UnknownSession) > 0);
        Assert.True(sessionRefusals.GetValueOrDefault(SessionRefusal.UnknownPeer) + sessionRefusals.GetValueOrDefault(SessionRefusal.WrongPeer) > 0);

        Assert.False(errors.HasMessages, "a function failed on bad input: " +
                                         (errors.HasMessages ? errors.ReceiveOne(TimeSpan.Zero) : ""));
        var inventoryAfter = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.Equal(inventoryBefore.Gateways.Select(g => (g.DeviceId, g.RegistrationId)), inventoryAfter.Gateways.Select(g => (g.DeviceId, g.RegistrationId)));
        Assert.Equal(inventoryBefore.Pnes.Select(p => (p.DeviceId, p.RegistrationId)), inventoryAfter.Pnes.Select(p => (p.DeviceId, p.RegistrationId)));
        var groupsAfter = await Server.Smf.Ask<GroupList>(ListGroups.Instance, Timeout);
        Assert.Equal(groupsBefore.Groups.Select(g => (g.GroupId, g.Epoch, string.Join(",", g.Members))),
            groupsAfter.Groups.Select(g => (g.GroupId, g.Epoch, string.Join(",", g.Members))));

        // And the network still does its work: a membership change rekeys, and both members hold the new epoch.
        var operatorProbe = CreateTestProbe();
        Server.Smf.Tell(new LocalRequest(new RemoveMember("grp", "p1", "p2")), operatorProbe.Ref);
        var accepted = await operatorProbe.ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(accepted.Epoch, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
    }

    private long _sequence;

    private SignedEnvelope SignedBy(EntityIdentity signer, string manifest, byte[] payload)
    {
        var sequence = ++_sequence;
        var timestamp = Sys.Scheduler.Now.ToUnixTimeMilliseconds();
        var body = Octets.Own(payload);
        var signature = signer.Sign(SignedEnvelope.SignedPart(signer.DeviceId, "fuzz", sequence, timestamp, manifest, body).Bytes);
        return new SignedEnvelope(signer.DeviceId, "fuzz", sequence, timestamp, manifest, body, signature);
    }

    /// <summary>Every actor of the server, the PN GW and the PNEs: the entity roots, their functions and those functions' children.</summary>
    private async Task<List<IActorRef>> FunctionsAsync()
    {
        var roots = new[] { ServerActor }.Concat(Gateways.Values).Concat(Pnes.Values).ToList();
        var found = new List<IActorRef>(roots);
        foreach (var root in roots)
        {
            foreach (var pattern in new[] { "*", "*/*" })
            {
                var probe = CreateTestProbe();
                Sys.ActorSelection(root.Path + "/" + pattern).Tell(new Identify(pattern), probe.Ref);
                while (await probe.ReceiveOneAsync(TimeSpan.FromMilliseconds(300)) is ActorIdentity { Subject: { } subject })
                    found.Add(subject);
            }
        }

        return found.Distinct().OrderBy(f => f.Path.ToString(), StringComparer.Ordinal).ToList();
    }
}
