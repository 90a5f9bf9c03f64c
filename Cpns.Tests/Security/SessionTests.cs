using System.Text;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>The session handshake and records as pure code: who may open what, and every way a record is refused.</summary>
public sealed class SessionTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly CredentialAuthority _kmc = CredentialAuthority.Generate("kmc");

    private SessionEnd End(string id, EntityKind kind, CredentialAuthority? issuer = null, string? credentialFor = null)
    {
        var identity = EntityIdentity.Generate(id, kind);
        var credential = (issuer ?? _kmc).Issue(credentialFor ?? id, kind, identity.PublicKeys, Now.AddDays(-1), TimeSpan.FromDays(30));
        return new SessionEnd(identity, credential, _kmc.Verifier());
    }

    private static (Session Initiator, Session Responder) Establish(SessionEnd initiator, SessionEnd responder, SessionLimits? limits = null)
    {
        var start = new SessionInitiator(initiator, responder.Identity.DeviceId);
        var answer = SessionResponder.Accept(responder, start.Hello, Now);
        var (session, confirm) = start.Complete(answer.Answer, Now, limits);
        return (session, answer.Confirm(confirm, Now, limits));
    }

    private static SessionRefusal Refusal(Action action) => Assert.Throws<SessionRefusedException>(action).Reason;

    [Fact]
    public void Both_ends_agree_one_session_and_records_go_both_ways_once()
    {
        var (gateway, server) = Establish(End("g1", EntityKind.PnGateway), End("cpns-server", EntityKind.Server));
        Assert.Equal(gateway.Id, server.Id);
        Assert.Equal(("g1", "cpns-server"), (gateway.LocalId, gateway.PeerId));

        var up = gateway.Seal("GroupKeyRequest", "hello server"u8, Now);
        var down = server.Seal("GroupKeyDelivery", "hello gateway"u8, Now);
        Assert.Equal("hello server", Encoding.UTF8.GetString(server.Open(up, Now)));
        Assert.Equal("hello gateway", Encoding.UTF8.GetString(gateway.Open(down, Now)));
        Assert.Equal((1, 1), (up.Sequence, down.Sequence));
        Assert.True(up.Ciphertext.Span.IndexOf("hello server"u8) < 0, "the payload is encrypted");
        Assert.Equal("hello server"u8.Length + SealedLayout.TagSize, up.Ciphertext.Length);
    }

    [Fact]
    public void A_session_in_steady_use_keeps_its_cipher_and_every_record_still_opens_once_and_only_unchanged()
    {
        // Past the first records each direction keeps its cipher context: the same bytes as a context made per record.
        var (gateway, server) = Establish(End("g1", EntityKind.PnGateway), End("cpns-server", EntityKind.Server));
        for (var i = 1; i <= 40; i++)
        {
            var up = gateway.Seal("UsageReport", Encoding.UTF8.GetBytes($"report {i}"), Now);
            var down = server.Seal("UsageAck", Encoding.UTF8.GetBytes($"ack {i}"), Now);
            Assert.Equal($"report {i}", Encoding.UTF8.GetString(server.Open(up, Now)));
            Assert.Equal($"ack {i}", Encoding.UTF8.GetString(gateway.Open(down, Now)));
            Assert.Equal(SessionRefusal.Replayed, Refusal(() => server.Open(up, Now)));
            var flipped = down.Ciphertext.ToArray();
            flipped[^1] ^= 1;
            Assert.Equal(SessionRefusal.BadRecord, Refusal(() => gateway.Open(down with { Ciphertext = Octets.Own(flipped) }, Now)));
        }

        gateway.Dispose();
        server.Dispose();
    }

    [Fact]
    public void A_replayed_record_is_refused_by_its_receiver_and_opens_for_no_other_receiver()
    {
        var g1 = End("g1", EntityKind.PnGateway);
        var (gateway, server) = Establish(g1, End("cpns-server", EntityKind.Server));
        var (_, other) = Establish(g1, End("g2", EntityKind.PnGateway));
        var record = gateway.Seal("UsageReport", "report"u8, Now);

        server.Open(record, Now);
        Assert.Equal(SessionRefusal.Replayed, Refusal(() => server.Open(record, Now)));
        Assert.Equal(SessionRefusal.UnknownSession, Refusal(() => other.Open(record, Now)));
        Assert.Equal(SessionRefusal.BadRecord, Refusal(() => other.Open(record with { SessionId = other.Id }, Now)));
    }

    [Fact]
    public void A_record_changed_in_any_bound_field_does_not_open_and_does_not_move_the_window()
    {
        var (gateway, server) = Establish(End("g1", EntityKind.PnGateway), End("cpns-server", EntityKind.Server));
        var record = gateway.Seal("GroupKeyRequest", "payload"u8, Now);
        var flipped = record.Ciphertext.ToArray();
        flipped[0] ^= 1;

        Assert.Equal(SessionRefusal.BadRecord, Refusal(() => server.Open(record with { Manifest = "RevokeCredential" }, Now)));
        Assert.Equal(SessionRefusal.BadRecord, Refusal(() => server.Open(record with { Ciphertext = Octets.Own(flipped) }, Now)));
        Assert.Equal(SessionRefusal.BadRecord, Refusal(() => server.Open(record with { Sequence = 1000 }, Now)));
        Assert.Equal(SessionRefusal.BadRecord, Refusal(() => server.Open(record with { Ciphertext = Octets.Own([1, 2]) }, Now)));
        Assert.Equal("payload", Encoding.UTF8.GetString(server.Open(record, Now)));
    }

    [Fact]
    public void Records_older_than_the_window_are_refused_and_out_of_order_ones_inside_it_are_not()
    {
        var (gateway, server) = Establish(End("g1", EntityKind.PnGateway), End("cpns-server", EntityKind.Server));
        var records = Enumerable.Range(0, ReplayWindow.Size + 2).Select(_ => gateway.Seal("m", "x"u8, Now)).ToList();
        server.Open(records[^1], Now);
        server.Open(records[5], Now);
        Assert.Equal(SessionRefusal.TooOld, Refusal(() => server.Open(records[0], Now)));
    }

    [Fact]
    public void Only_the_named_responder_with_a_credential_of_this_KMC_completes_a_handshake()
    {
        var g1 = End("g1", EntityKind.PnGateway);
        var server = End("cpns-server", EntityKind.Server);

        // A hello meant for the server, delivered to g2.
        var hello = new SessionInitiator(g1, "cpns-server").Hello;
        Assert.Equal(SessionRefusal.WrongPeer, Refusal(() => SessionResponder.Accept(End("g2", EntityKind.PnGateway), hello, Now)));

        // An initiator whose credential comes from another KMC, or names somebody else.
        var foreign = End("g1", EntityKind.PnGateway, CredentialAuthority.Generate("other"));
        Assert.Equal(SessionRefusal.BadCredential,
            Refusal(() => SessionResponder.Accept(server, new SessionInitiator(foreign, "cpns-server").Hello, Now)));
        var borrowed = End("g9", EntityKind.PnGateway, credentialFor: "g1");
        Assert.Equal(SessionRefusal.WrongPeer,
            Refusal(() => SessionResponder.Accept(server, new SessionInitiator(borrowed, "cpns-server").Hello, Now)));

        // A responder that answers with another entity's credential, or signs with a key its credential does not hold.
        var start = new SessionInitiator(g1, "cpns-server");
        var answer = SessionResponder.Accept(server, start.Hello, Now).Answer;
        var impostor = End("cpns-server", EntityKind.Server);
        Assert.Equal(SessionRefusal.BadSignature,
            Refusal(() => start.Complete(answer with { ResponderCredential = impostor.Credential }, Now)));
        Assert.Equal(SessionRefusal.WrongPeer, Refusal(() => start.Complete(answer with { ResponderId = "g2" }, Now)));
    }

    [Fact]
    public void A_changed_suite_offer_is_a_broken_signature_and_an_unsupported_offer_is_refused()
    {
        var g1 = End("g1", EntityKind.PnGateway);
        var server = End("cpns-server", EntityKind.Server);
        var start = new SessionInitiator(g1, "cpns-server");
        // On the way, somebody rewrites the offer: the responder signs what it saw, the initiator checks what it sent.
        var rewritten = start.Hello with { Offered = [SessionSuite.X25519Ed25519Aes256GcmSha256, (SessionSuite)99] };
        var answer = SessionResponder.Accept(server, rewritten, Now).Answer;
        Assert.Equal(SessionRefusal.BadSignature, Refusal(() => start.Complete(answer, Now)));

        Assert.Equal(SessionRefusal.NoCommonSuite,
            Refusal(() => SessionResponder.Accept(server, start.Hello with { Offered = [(SessionSuite)99] }, Now)));
        var honest = SessionResponder.Accept(server, start.Hello, Now).Answer;
        Assert.Equal(SessionRefusal.NoCommonSuite, Refusal(() => start.Complete(honest with { Chosen = (SessionSuite)99 }, Now)));
    }

    [Fact]
    public void A_confirmation_that_is_not_the_initiators_signature_establishes_nothing()
    {
        var g1 = End("g1", EntityKind.PnGateway);
        var start = new SessionInitiator(g1, "cpns-server");
        var responder = SessionResponder.Accept(End("cpns-server", EntityKind.Server), start.Hello, Now);
        var (_, confirm) = start.Complete(responder.Answer, Now);

        Assert.Equal(SessionRefusal.BadSignature,
            Refusal(() => responder.Confirm(confirm with { Signature = g1.Identity.Sign("something else"u8) }, Now)));
        Assert.Equal(SessionRefusal.UnknownSession, Refusal(() => responder.Confirm(confirm with { SessionId = Octets.Own(new byte[16]) }, Now)));
    }

    [Fact]
    public void A_session_expires_by_time_and_by_records_and_then_a_new_handshake_is_needed()
    {
        var limits = new SessionLimits(TimeSpan.FromMinutes(10), MaxRecords: 2);
        var (gateway, server) = Establish(End("g1", EntityKind.PnGateway), End("cpns-server", EntityKind.Server), limits);
        var first = gateway.Seal("m", "1"u8, Now);
        gateway.Seal("m", "2"u8, Now);

        Assert.Equal(SessionRefusal.Expired, Refusal(() => gateway.Seal("m", "3"u8, Now)));
        Assert.Equal(SessionRefusal.Expired, Refusal(() => server.Open(first, Now.AddMinutes(11))));
        Assert.True(server.IsExpired(Now.AddMinutes(10)));
    }
}
