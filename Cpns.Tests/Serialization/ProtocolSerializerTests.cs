using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Cpns.Actors.Protocol;
using Cpns.Actors.Serialization;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Serialization;

public sealed class ProtocolSerializerTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    public static TheoryData<string> ProtocolTypeNames()
    {
        var data = new TheoryData<string>();
        foreach (var type in ProtocolSerializer.ProtocolTypes.OrderBy(t => t.Name))
            data.Add(type.Name);
        return data;
    }

    private ProtocolSerializer Serializer =>
        Assert.IsType<ProtocolSerializer>(Sys.Serialization.FindSerializerForType(typeof(GroupNotice)));

    [Fact]
    public void Every_protocol_message_is_bound_to_the_protocol_serializer()
    {
        Assert.Equal(117, Serializer.Identifier); // journals name it by this id: it never changes
        Assert.NotEmpty(ProtocolSerializer.ProtocolTypes);
        foreach (var type in ProtocolSerializer.ProtocolTypes)
            Assert.IsType<ProtocolSerializer>(Sys.Serialization.FindSerializerForType(type));
    }

    [Theory]
    [MemberData(nameof(ProtocolTypeNames))]
    public void Each_protocol_record_round_trips_to_the_same_bytes(string typeName)
    {
        var type = ProtocolSerializer.ProtocolTypes.Single(t => t.Name == typeName);
        var sample = Samples.Create(type, TestActor);

        var manifest = Serializer.Manifest(sample);
        var bytes = Serializer.ToBinary(sample);
        var back = Serializer.FromBinary(bytes, manifest);

        Assert.IsType(type, back);
        Assert.Equal(Encoding.UTF8.GetString(bytes), Encoding.UTF8.GetString(Serializer.ToBinary(back)));
    }

    [Fact]
    public void Actor_references_and_byte_strings_survive_the_trip()
    {
        var notice = new GroupNotice("grp", 3, DeliveryMode.Pull, NoticeKind.Updated, TestActor, ["p1"], ["p2"]);
        var back = (GroupNotice)Serializer.FromBinary(Serializer.ToBinary(notice), Serializer.Manifest(notice));
        Assert.Equal(TestActor, back.KeyLocation);
        Assert.Equal(["p1"], back.LocalMembers);

        var record = new Cpns.Actors.Security.SessionRecord(Octets.Own([1, 2, 3, 255]), 3, "GroupNotice", Octets.Own([0, 9]));
        Assert.Equal(record, Serializer.FromBinary(Serializer.ToBinary(record), Serializer.Manifest(record)));
    }

    [Fact]
    public void An_unknown_manifest_is_a_SerializationException()
    {
        var error = Assert.Throws<SerializationException>(() => Serializer.FromBinary("{}"u8.ToArray(), "NoSuchMessage"));
        Assert.Contains("NoSuchMessage", error.Message);
    }

    [Fact]
    public void A_malformed_payload_is_a_SerializationException()
    {
        Assert.Throws<SerializationException>(() => Serializer.FromBinary("{\"GroupId\": [1,"u8.ToArray(), nameof(GroupNotice)));
        Assert.Throws<SerializationException>(() => Serializer.FromBinary("null"u8.ToArray(), nameof(GroupNotice)));
    }

    [Fact]
    public void A_type_outside_the_protocol_is_refused()
    {
        Assert.Throws<SerializationException>(() => Serializer.ToBinary("not a protocol message"));
    }

    [Fact]
    public async Task Malformed_bytes_from_a_registered_entity_are_a_typed_refusal_and_the_receiver_carries_on()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        var sequence = 0L;
        foreach (var garbage in new[] { "garbage"u8.ToArray(), "{\"GroupId\": null}"u8.ToArray(), "{\"GroupId\": [1,"u8.ToArray(), Array.Empty<byte>() })
        {
            var body = Octets.Own(garbage);
            var now = Sys.Scheduler.Now.ToUnixTimeMilliseconds();
            var signature = Identities["p1"].Sign(
                Cpns.Actors.Protocol.SignedEnvelope.SignedPart("p1", "malformed", ++sequence, now, nameof(CreateGroup), body).Bytes);
            Server.Smf.Tell(new Cpns.Actors.Protocol.SignedEnvelope("p1", "malformed", sequence, now, nameof(CreateGroup), body, signature), TestActor);
            var refused = await ExpectMsgAsync<Cpns.Actors.Protocol.EnvelopeRejected>(Timeout);
            Assert.Equal(Cpns.Actors.Protocol.EnvelopeRejection.Malformed, refused.Reason);
        }

        // Same actor, same state: it counted each refusal and goes on answering.
        var counters = await Server.Smf.Ask<Cpns.Actors.Protocol.SecurityCounters>(GetSecurityCounters.Instance, Timeout);
        Assert.Equal(4, counters.Rejections["Malformed"]);
        Server.Smf.Tell(new GetGroup("none"), TestActor);
        Assert.False((await ExpectMsgAsync<GroupState>(Timeout)).Exists);
    }
}
