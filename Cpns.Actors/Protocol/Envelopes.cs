namespace Cpns.Actors.Protocol;

/// <summary>
/// What travels between two entities' functions: a signed envelope (a first message, or one relayed or broadcast), a
/// handshake step, a session record, or a session refusal. <c>Security.SecureLink</c> is the one place that opens them.
/// </summary>
public interface ISecureWire : ICpnsMessage;

/// <summary>
/// A message between entities: who sent it (entity id and sending function), its per-sender sequence number,
/// when, the protocol payload, and the sender's Ed25519 signature over all of it. <see cref="OffersSessions"/> (signed
/// too) says the sending function can continue in a session: the receiver may then start a handshake with it.
/// </summary>
public sealed record SignedEnvelope(
    string SenderId,
    string Channel,
    long Sequence,
    long TimestampMs,
    string Manifest,
    Octets Payload,
    Octets Signature) : ISecureWire
{
    public bool OffersSessions { get; init; }

    public static Transcript SignedPart(string senderId, string channel, long sequence, long timestampMs, string manifest,
        Octets payload, bool offersSessions = false)
    {
        var transcript = new Transcript("cpns/envelope/v1").Add(senderId).Add(channel).Add(sequence).Add(timestampMs).Add(manifest)
            .Add(payload);
        return offersSessions ? transcript.Add("sessions") : transcript;
    }
}

public enum EnvelopeRejection
{
    Malformed,
    Oversized,
    UnknownSender,
    Revoked,
    BadSignature,
    Replayed,
    TooOld,
    StaleTimestamp,
}
