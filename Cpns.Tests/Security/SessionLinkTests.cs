using Akka.Actor;
using Akka.Event;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Sessions as the functions use them (<see cref="SecureLink"/>): a first signed envelope that offers one, the handshake when
/// traffic repeats, then records — replayed, sent to another receiver, forged, after a restart, after a revocation.
/// </summary>
public sealed class SessionLinkTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private sealed record Talk(IActorRef To, ICpnsMessage Message) : INodeLocal;

    private sealed record SealOnly(IActorRef To, ICpnsMessage Message) : INodeLocal;

    private sealed record Crash : INodeLocal;

    private sealed record Revoke(string DeviceId) : INodeLocal;

    private sealed record Opened(string SenderId, object Message) : INodeLocal;

    /// <summary>One function of an entity, as small as can be: a link, the keys it trusts, and a probe that hears what it opens.</summary>
    private sealed class LinkPeer : UntypedActor
    {
        private readonly SecureLink _link;
        private readonly IActorRef _observer;

        public LinkPeer(EntityIdentity identity, IReadOnlyList<EntityIdentity> trusted, IActorRef observer)
        {
            _link = new SecureLink(Context, identity, CpnsSettings.From(Context.System), Context.GetLogger());
            foreach (var peer in trusted)
                _link.Guard.Trust(peer.DeviceId, peer.PublicKeys.Signing);
            _observer = observer;
        }

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case Talk talk:
                    _link.Send(talk.To, talk.Message);
                    break;
                case SealOnly seal:
                    Sender.Tell(_link.SealFor(seal.To, seal.Message));
                    break;
                case Crash:
                    throw new InvalidOperationException("crash on purpose");
                case Revoke revoke:
                    _link.Guard.Revoke(revoke.DeviceId);
                    break;
                case GetSecurityCounters:
                    Sender.Tell(_link.Counters());
                    break;
                case ISecureWire wire:
                    if (_link.TryOpen(wire, out var opened, out var senderId))
                        _observer.Tell(new Opened(senderId, opened));
                    break;
                default:
                    _observer.Tell(message);
                    break;
            }
        }
    }

    private readonly EntityIdentity _a = EntityIdentity.Generate("g0001", EntityKind.PnGateway);
    private readonly EntityIdentity _b = EntityIdentity.Generate("cpns-server", EntityKind.Server);
    private readonly EntityIdentity _c = EntityIdentity.Generate("g0002", EntityKind.PnGateway);

    private static GroupKeyRequest Request(long epoch) => new("grp-0001", epoch, "g0001");

    private (IActorRef Peer, Akka.TestKit.TestProbe Heard) Peer(EntityIdentity identity, string name, params EntityIdentity[] trusted)
    {
        var heard = CreateTestProbe();
        return (Sys.ActorOf(Props.Create(() => new LinkPeer(identity, trusted, heard.Ref)), name), heard);
    }

    private async Task<IReadOnlyDictionary<string, long>> SessionsOf(IActorRef peer) =>
        (await peer.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Sessions;

    private async Task<IReadOnlyDictionary<string, long>> RefusalsOf(IActorRef peer) =>
        (await peer.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections;

    /// <summary>a offers a session in its first envelope; b answers twice (the second time starting the handshake).</summary>
    private async Task<((IActorRef Peer, Akka.TestKit.TestProbe Heard) A, (IActorRef Peer, Akka.TestKit.TestProbe Heard) B)> EstablishedAsync()
    {
        var a = Peer(_a, "a", _b);
        var b = Peer(_b, "b", _a, _c);
        a.Peer.Tell(new Talk(b.Peer, Request(1)));
        Assert.Equal(new Opened("g0001", Request(1)), await b.Heard.ExpectMsgAsync<Opened>(Timeout));
        b.Peer.Tell(new Talk(a.Peer, Request(2)));
        b.Peer.Tell(new Talk(a.Peer, Request(3)));
        Assert.Equal(new Opened("cpns-server", Request(2)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
        Assert.Equal(new Opened("cpns-server", Request(3)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
        await AwaitAssertAsync(async () =>
        {
            Assert.Equal(1, (await SessionsOf(a.Peer)).GetValueOrDefault("Established"));
            Assert.Equal(1, (await SessionsOf(b.Peer)).GetValueOrDefault("Established"));
        }, Timeout);
        return (a, b);
    }

    [Fact]
    public async Task After_a_first_envelope_and_a_handshake_both_ways_go_as_session_records()
    {
        var (a, b) = await EstablishedAsync();
        Assert.Equal(1, (await SessionsOf(b.Peer))["HandshakesStarted"]);
        Assert.Equal(0, (await SessionsOf(a.Peer)).GetValueOrDefault("HandshakesStarted"));

        var record = Assert.IsType<SessionRecord>(await b.Peer.Ask<ISecureWire>(new SealOnly(a.Peer, Request(4)), Timeout));
        Assert.Equal(nameof(GroupKeyRequest), record.Manifest);
        var wire = ProtocolSerializer.Encode(record);
        Assert.True(wire.AsSpan().IndexOf("grp-0001"u8) < 0, "the payload is encrypted on the wire");
        a.Peer.Tell(record, b.Peer);
        Assert.Equal(new Opened("cpns-server", Request(4)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));

        a.Peer.Tell(new Talk(b.Peer, Request(5)));
        Assert.Equal(new Opened("g0001", Request(5)), await b.Heard.ExpectMsgAsync<Opened>(Timeout));
        Assert.Equal(1, (await SessionsOf(a.Peer))["RecordsSent"]);
        Assert.Equal(1, (await SessionsOf(b.Peer))["RecordsOpened"]);
        Assert.Equal(1, (await SessionsOf(a.Peer))["RecordsOpened"]);
    }

    [Fact]
    public async Task A_replayed_record_is_refused_by_its_receiver_and_by_another_and_changes_nothing()
    {
        var (a, b) = await EstablishedAsync();
        var c = Peer(_c, "c", _b);
        // c has its own session with b.
        c.Peer.Tell(new Talk(b.Peer, new GroupKeyRequest("grp-0001", 1, "g0002")));
        await b.Heard.ExpectMsgAsync<Opened>(Timeout);
        b.Peer.Tell(new Talk(c.Peer, Request(1)));
        b.Peer.Tell(new Talk(c.Peer, Request(1)));
        await c.Heard.ExpectMsgAsync<Opened>(Timeout);
        await c.Heard.ExpectMsgAsync<Opened>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await SessionsOf(c.Peer)).GetValueOrDefault("Established")), Timeout);

        var record = Assert.IsType<SessionRecord>(await b.Peer.Ask<ISecureWire>(new SealOnly(a.Peer, Request(6)), Timeout));
        var attacker = CreateTestProbe();
        a.Peer.Tell(record, attacker.Ref);
        Assert.Equal(new Opened("cpns-server", Request(6)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));

        a.Peer.Tell(record, attacker.Ref);
        var replayed = await attacker.ExpectMsgAsync<SessionRefused>(Timeout);
        Assert.Equal((record.SessionId, record.Sequence, SessionRefusal.Replayed), (replayed.SessionId, replayed.Sequence, replayed.Reason));

        c.Peer.Tell(record, attacker.Ref);
        Assert.Equal(SessionRefusal.UnknownSession, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);

        Assert.Equal(1, (await RefusalsOf(a.Peer))["SessionReplayed"]);
        Assert.Equal(1, (await RefusalsOf(c.Peer))["SessionUnknownSession"]);
        await a.Heard.ExpectNoMsgAsync(TimeSpan.Zero);
        await c.Heard.ExpectNoMsgAsync(TimeSpan.Zero);

        // The session goes on: the next real record still opens.
        b.Peer.Tell(new Talk(a.Peer, Request(7)));
        Assert.Equal(new Opened("cpns-server", Request(7)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
    }

    [Fact]
    public async Task Forged_records_and_handshakes_get_typed_refusals_and_no_restart()
    {
        var (a, b) = await EstablishedAsync();
        var attacker = CreateTestProbe();
        var record = Assert.IsType<SessionRecord>(await b.Peer.Ask<ISecureWire>(new SealOnly(a.Peer, Request(8)), Timeout));

        var flipped = record.Ciphertext.ToArray();
        flipped[0] ^= 1;
        a.Peer.Tell(record with { Ciphertext = Octets.Own(flipped) }, attacker.Ref);
        Assert.Equal(SessionRefusal.BadRecord, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);
        a.Peer.Tell(record with { Manifest = nameof(GroupKeyAck) }, attacker.Ref);
        Assert.Equal(SessionRefusal.BadRecord, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);
        a.Peer.Tell(record with { SessionId = Octets.Own(new byte[16]) }, attacker.Ref);
        Assert.Equal(SessionRefusal.UnknownSession, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);
        a.Peer.Tell(record with { Sequence = -1 }, attacker.Ref);
        Assert.Equal(SessionRefusal.BadRecord, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);

        // A hello from an id a does not trust, and steps of handshakes a never began.
        var stranger = EntityIdentity.Generate("g0666", EntityKind.PnGateway);
        a.Peer.Tell(new SessionInitiator(new SessionEnd(stranger), "g0001").Hello, attacker.Ref);
        Assert.Equal(SessionRefusal.UnknownPeer, (await attacker.ExpectMsgAsync<SessionRefused>(Timeout)).Reason);
        a.Peer.Tell(new SessionConfirm(Octets.Own(new byte[16]), Octets.Own(new byte[64])), attacker.Ref);
        a.Peer.Tell(new SessionAccept("cpns-server", null, Octets.Own(new byte[32]), Octets.Own(new byte[16]),
            SessionSuite.X25519Ed25519Aes256GcmSha256, Octets.Own(new byte[64]), Octets.Own(new byte[16])), attacker.Ref);

        // Still the same actor (its counters kept), and the real record still opens once.
        await AwaitAssertAsync(async () =>
        {
            var refusals = await RefusalsOf(a.Peer);
            // Unknown: the made-up session id, the confirmation and the answer to handshakes a never began.
            Assert.Equal((3L, 3L, 1L), (refusals["SessionBadRecord"], refusals["SessionUnknownSession"], refusals["SessionUnknownPeer"]));
        }, Timeout);
        a.Peer.Tell(record, b.Peer);
        Assert.Equal(new Opened("cpns-server", Request(8)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
    }

    [Fact]
    public async Task A_record_to_a_restarted_function_is_sent_again_signed_and_nothing_is_lost()
    {
        var (a, b) = await EstablishedAsync();
        await EventFilter.Exception<InvalidOperationException>().ExpectOneAsync(() =>
        {
            a.Peer.Tell(new Crash());
            return Task.CompletedTask;
        });

        // b still holds the session; a's new incarnation does not: it refuses the record, b sends the message again signed.
        b.Peer.Tell(new Talk(a.Peer, Request(9)));
        Assert.Equal(new Opened("cpns-server", Request(9)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
        Assert.Equal(1, (await SessionsOf(b.Peer))["Resent"]);
        Assert.Equal(0, (await SessionsOf(b.Peer))["Open"]); // the session a lost is gone at b too
        Assert.Equal(1, (await RefusalsOf(a.Peer))["SessionUnknownSession"]);

        // A record of that session refused again (an answer that was on its way) changes nothing more; the next messages arrive.
        b.Peer.Tell(new SessionRefused(Octets.Own(new byte[16]), 1, SessionRefusal.UnknownSession), a.Peer);
        b.Peer.Tell(new Talk(a.Peer, Request(11)));
        Assert.Equal(new Opened("cpns-server", Request(11)), await a.Heard.ExpectMsgAsync<Opened>(Timeout));
    }

    [Fact]
    public async Task A_revocation_ends_the_session_at_once()
    {
        var (a, b) = await EstablishedAsync();
        a.Peer.Tell(new Revoke("cpns-server"));
        b.Peer.Tell(new Talk(a.Peer, Request(10)));
        Assert.Equal(EnvelopeRejection.Revoked, (await b.Heard.ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        await a.Heard.ExpectNoMsgAsync(TimeSpan.Zero);
        Assert.Equal(0, (await SessionsOf(a.Peer))["Open"]);
    }
}

/// <summary>The same links between the real entities: a group's key flows run over sessions once the traffic repeats.</summary>
public sealed class SessionFlowTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.security.sessions.after-messages = 1")
{
    [Fact]
    public async Task Key_deliveries_between_server_gateway_and_PNE_travel_as_session_records_and_every_member_holds_the_key()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("alerts", "p1", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        for (var epoch = 2; epoch <= 4; epoch++)
        {
            Server.Smf.Tell(new LocalRequest(epoch % 2 == 0 ? new AddMember("alerts", "p1", "p3") : new RemoveMember("alerts", "p1", "p3")),
                TestActor);
            Assert.Equal(epoch, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        }

        await AwaitAssertAsync(async () =>
        {
            foreach (var pne in new[] { "p1", "p2" })
                Assert.Equal(4, (await KeyStateAsync(Pnes[pne], "alerts")).CurrentEpoch);
        }, Timeout);

        // Sessions start as the traffic repeats: a few more epochs, until both legs have carried a record (at most 10).
        var gatewayCskmf = await Sys.ActorSelection("/user/gateway-g1/cskmf").ResolveOne(Timeout);
        var server = await Server.Cskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout);
        var gateway = await gatewayCskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout);
        for (var epoch = 5; epoch <= 14 && (gateway.Sessions.GetValueOrDefault("RecordsOpened") == 0 ||
                                             gateway.Sessions.GetValueOrDefault("RecordsSent") == 0); epoch++)
        {
            Server.Smf.Tell(new LocalRequest(epoch % 2 == 0 ? new AddMember("alerts", "p1", "p3") : new RemoveMember("alerts", "p1", "p3")),
                TestActor);
            Assert.Equal(epoch, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes["p1"], "alerts")).CurrentEpoch), Timeout);
            server = await Server.Cskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout);
            gateway = await gatewayCskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout);
        }

        string Dump(SecurityCounters c) => $"{c.Receiver}: {string.Join(", ", c.Sessions.Concat(c.Rejections).Select(kv => $"{kv.Key}={kv.Value}"))}";
        Output.WriteLine(Dump(server));
        Output.WriteLine(Dump(gateway));
        Assert.True(server.Sessions.GetValueOrDefault("Established") >= 1, "the server's CSKMF has a session with the PN GW's");
        Assert.True(gateway.Sessions.GetValueOrDefault("RecordsOpened") >= 1, "the PN GW opened key deliveries from session records");
        Assert.True(gateway.Sessions.GetValueOrDefault("RecordsSent") >= 1, "the PN GW sent key deliveries to its PNEs as session records");
        Assert.DoesNotContain(server.Rejections.Concat(gateway.Rejections), r => r.Value > 0);
    }
}
