using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>The envelope checks themselves, on one guard.</summary>
public sealed class EnvelopeGuardTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private readonly EntityIdentity _sender = EntityIdentity.Generate("g1", EntityKind.PnGateway);

    private EnvelopeGuard Guard()
    {
        var guard = new EnvelopeGuard("test", Sys, Settings);
        guard.Trust(_sender.DeviceId, _sender.PublicKeys.Signing);
        return guard;
    }

    private static GroupKeyRequest Payload => new("grp", 1, "g1");

    private SignedEnvelope Envelope(long sequence, long timestampMs, object? payload = null, EntityIdentity? signer = null)
    {
        signer ??= _sender;
        var bytes = Sys.Serialization.FindSerializerFor(payload ?? Payload).ToBinary(payload ?? Payload);
        var manifest = nameof(GroupKeyRequest);
        var signature = signer.Sign(SignedEnvelope.SignedPart(_sender.DeviceId, "c", sequence, timestampMs, manifest,
            Octets.Own(bytes)).Bytes);
        return new SignedEnvelope(_sender.DeviceId, "c", sequence, timestampMs, manifest, Octets.Own(bytes), signature);
    }

    private long NowMs => Sys.Scheduler.Now.ToUnixTimeMilliseconds();

    [Fact]
    public void A_good_envelope_opens_to_its_payload_and_its_sender()
    {
        var opened = Guard().Open(Envelope(1, NowMs));
        Assert.True(opened.Accepted);
        Assert.Equal(Payload, opened.Message);
        Assert.Equal("g1", opened.SenderId);
    }

    [Fact]
    public void Each_kind_of_bad_envelope_is_refused_and_counted()
    {
        var guard = Guard();
        var good = Envelope(5, NowMs);
        Assert.True(guard.Open(good).Accepted);

        Assert.Equal(EnvelopeRejection.Replayed, guard.Open(good).Rejection);
        Assert.Equal(EnvelopeRejection.BadSignature,
            guard.Open(good with { Sequence = 6 }).Rejection); // the sequence number is signed
        Assert.Equal(EnvelopeRejection.BadSignature,
            guard.Open(Envelope(7, NowMs, signer: EntityIdentity.Generate("g1", EntityKind.PnGateway))).Rejection);
        Assert.Equal(EnvelopeRejection.StaleTimestamp,
            guard.Open(Envelope(8, NowMs - (long)Settings.Security.EnvelopeMaxSkew.TotalMilliseconds - 1000)).Rejection);
        Assert.Equal(EnvelopeRejection.UnknownSender, guard.Open(good with { SenderId = "stranger" }).Rejection);
        Assert.Equal(EnvelopeRejection.Malformed, guard.Open(good with { Signature = Octets.Own([1, 2, 3]) }).Rejection);
        Assert.Equal(EnvelopeRejection.Oversized,
            guard.Open(good with { Payload = Octets.Own(new byte[Settings.Security.EnvelopeMaxPayloadBytes + 1]) }).Rejection);

        Assert.Equal(1, guard.Counts[EnvelopeRejection.Replayed]);
        Assert.Equal(2, guard.Counts[EnvelopeRejection.BadSignature]);
        Assert.Equal(1, guard.Counts[EnvelopeRejection.StaleTimestamp]);
        Assert.Equal(1, guard.Counts[EnvelopeRejection.UnknownSender]);
    }

    [Fact]
    public void Out_of_order_delivery_within_the_window_is_fine_and_too_old_is_refused()
    {
        var guard = Guard();
        Assert.True(guard.Open(Envelope(100, NowMs)).Accepted);
        Assert.True(guard.Open(Envelope(98, NowMs)).Accepted);
        Assert.True(guard.Open(Envelope(99, NowMs)).Accepted);
        Assert.Equal(EnvelopeRejection.Replayed, guard.Open(Envelope(98, NowMs)).Rejection);
        Assert.Equal(EnvelopeRejection.TooOld, guard.Open(Envelope(100 - EnvelopeGuard.ReplayWindowSize, NowMs)).Rejection);
        Assert.True(guard.Open(Envelope(1000, NowMs)).Accepted);
    }

    [Fact]
    public void A_revoked_sender_is_refused_even_with_a_valid_signature()
    {
        var guard = Guard();
        guard.Revoke("g1");
        Assert.Equal(EnvelopeRejection.Revoked, guard.Open(Envelope(1, NowMs)).Rejection);
    }

    [Fact]
    public void A_payload_that_is_not_a_protocol_message_is_malformed()
    {
        var guard = Guard();
        var bytes = "{\"nope\":1}"u8.ToArray();
        var signature = _sender.Sign(SignedEnvelope.SignedPart("g1", "c", 1, NowMs, "NoSuchType", Octets.Own(bytes)).Bytes);
        var envelope = new SignedEnvelope("g1", "c", 1, NowMs, "NoSuchType", Octets.Own(bytes), signature);
        Assert.Equal(EnvelopeRejection.Malformed, guard.Open(envelope).Rejection);
    }
}
