using Akka.Actor;
using Akka.Serialization;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;


/// <summary>Seals the messages one function of an entity sends: its own sequence numbers, its identity's signature.</summary>
public sealed class EnvelopeSealer
{
    private readonly EntityIdentity _identity;
    private readonly string _channel;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly IScheduler _clock;
    private long _sequence;

    private readonly bool _offersSessions;

    public EnvelopeSealer(EntityIdentity identity, string channel, ActorSystem system, bool offersSessions = false)
    {
        _identity = identity;
        _channel = channel;
        _serialization = system.Serialization;
        _clock = system.Scheduler;
        _offersSessions = offersSessions;
    }

    public string SenderId => _identity.DeviceId;

    public SignedEnvelope Seal(object message)
    {
        var serializer = (SerializerWithStringManifest)_serialization.FindSerializerFor(message);
        var payload = Octets.Own(serializer.ToBinary(message));
        var manifest = serializer.Manifest(message);
        var sequence = ++_sequence;
        var timestamp = _clock.Now.ToUnixTimeMilliseconds();
        var signature = _identity.Sign(
            SignedEnvelope.SignedPart(_identity.DeviceId, _channel, sequence, timestamp, manifest, payload, _offersSessions).Bytes);
        return new SignedEnvelope(_identity.DeviceId, _channel, sequence, timestamp, manifest, payload, signature)
        {
            OffersSessions = _offersSessions,
        };
    }
}

/// <summary>The result of opening an envelope: the payload and who provably sent it, or why it was refused.</summary>
public readonly record struct OpenedEnvelope(object? Message, string? SenderId, EnvelopeRejection? Rejection, string? Detail)
{
    public bool Accepted => Message is not null;
}

/// <summary>
/// Checks the envelopes one function receives: a known, unrevoked sender, a valid signature, a sequence
/// number not seen before and not older than the replay window, a timestamp within the allowed skew, a
/// parsable payload of bounded size. Every refusal is counted, per kind.
/// </summary>
public sealed class EnvelopeGuard
{
    public const int ReplayWindowSize = Security.ReplayWindow.Size;


    private readonly string _receiver;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly int _protocolSerializerId;
    private readonly IScheduler _clock;
    private readonly Func<DateTimeOffset>? _arrivalOfCurrent;
    private readonly TimeSpan _maxSkew;
    private readonly int _maxPayloadBytes;
    private readonly Dictionary<string, VerificationKey> _senders = new(StringComparer.Ordinal);
    // Made when first needed: most of a large network's guards never refuse or revoke anything.
    private HashSet<string>? _revoked;
    private readonly Dictionary<(string Sender, string Channel), ReplayWindow> _windows = new();
    private Dictionary<EnvelopeRejection, long>? _counts;
    private static readonly IReadOnlyDictionary<EnvelopeRejection, long> NoCounts = new Dictionary<EnvelopeRejection, long>();

    /// <param name="arrivalOfCurrent">
    /// When the envelope being opened reached its receiver (<see cref="Common.MessageArrival"/>): its timestamp is checked
    /// against that, so the receiver's own queueing never makes it stale. Null: the clock's now.
    /// </param>
    public EnvelopeGuard(string receiver, ActorSystem system, CpnsSettings settings, Func<DateTimeOffset>? arrivalOfCurrent = null)
    {
        _arrivalOfCurrent = arrivalOfCurrent;
        _receiver = receiver;
        _serialization = system.Serialization;
        _protocolSerializerId = _serialization.FindSerializerForType(typeof(ICpnsMessage)).Identifier;
        _clock = system.Scheduler;
        _maxSkew = settings.Security.EnvelopeMaxSkew;
        _maxPayloadBytes = settings.Security.EnvelopeMaxPayloadBytes;
    }

    public IReadOnlyDictionary<EnvelopeRejection, long> Counts => _counts ?? NoCounts;

    public void Trust(string senderId, Octets signingKey)
    {
        if (_senders.TryGetValue(senderId, out var known) && known.Encoded == signingKey)
            return;
        if (VerificationKey.TryCreate(signingKey) is { } key)
            _senders[senderId] = key;
        _revoked?.Remove(senderId);
    }

    public void Forget(string senderId) => _senders.Remove(senderId);

    public void Revoke(string senderId)
    {
        _senders.Remove(senderId);
        (_revoked ??= new HashSet<string>(StringComparer.Ordinal)).Add(senderId);
    }

    public bool Knows(string senderId) => _senders.ContainsKey(senderId);

    public Octets? KeyOf(string senderId) => _senders.GetValueOrDefault(senderId)?.Encoded;

    /// <summary>
    /// Opens an envelope whose signing key the payload itself may name (a registration hello, a challenge with a
    /// credential); otherwise the sender must already be trusted.
    /// </summary>
    /// <summary>The key the last self-signed envelope was checked with (so handlers need not derive it twice).</summary>
    public Octets? LastSelfSignedKey { get; internal set; }

    public int MaxPayloadBytes => _maxPayloadBytes;

    public bool IsRevoked(string senderId) => _revoked?.Contains(senderId) == true;

    /// <summary>
    /// Admits the plaintext of a session record: its sender still trusted with the key the session's handshake proved (a
    /// revocation or a new key ends the session), a payload of bounded size that parses as protocol.
    /// </summary>
    public OpenedEnvelope Admit(string senderId, Octets provenKey, string manifest, byte[] plaintext)
    {
        if (plaintext.Length > _maxPayloadBytes)
            return Reject(EnvelopeRejection.Oversized, $"payload of {plaintext.Length} bytes exceeds {_maxPayloadBytes}");
        if (IsRevoked(senderId))
            return Reject(EnvelopeRejection.Revoked, $"{senderId} is revoked");
        if (!_senders.TryGetValue(senderId, out var key) || key.Encoded != provenKey)
            return Reject(EnvelopeRejection.UnknownSender, $"{senderId} is no longer trusted with the key of its session");
        var message = Deserialize(manifest, plaintext);
        return message is null
            ? Reject(EnvelopeRejection.Malformed, $"payload '{manifest}' does not parse")
            : new OpenedEnvelope(message, senderId, null, null);
    }

    /// <summary>Counts and describes a refusal decided outside the guard (a record whose claimed key changed).</summary>
    public OpenedEnvelope Refuse(EnvelopeRejection rejection, string detail) => Reject(rejection, detail);

    public OpenedEnvelope OpenSelfSigned(SignedEnvelope envelope, Func<object, Octets?> signingKeyOf)
    {
        if (Precheck(envelope) is { } early)
            return early;
        var message = Deserialize(envelope);
        if (message is null)
            return Reject(EnvelopeRejection.Malformed, $"payload '{envelope.Manifest}' does not parse");
        if (IsRevoked(envelope.SenderId))
            return Reject(EnvelopeRejection.Revoked, $"{envelope.SenderId} is revoked");
        // A hello or registration names the key it is signed with (checked by the handshake that follows);
        // anything else must come from a sender already trusted.
        var named = signingKeyOf(message);
        var key = named is null ? _senders.GetValueOrDefault(envelope.SenderId)
            : _senders.TryGetValue(envelope.SenderId, out var known) && known.Encoded == named ? known
            : VerificationKey.TryCreate(named);
        LastSelfSignedKey = key?.Encoded;
        if (key is null)
            return Reject(EnvelopeRejection.UnknownSender, $"no key for {envelope.SenderId}");
        return Finish(envelope, key, message);
    }

    public OpenedEnvelope Open(SignedEnvelope envelope)
    {
        if (Precheck(envelope) is { } early)
            return early;
        if (IsRevoked(envelope.SenderId))
            return Reject(EnvelopeRejection.Revoked, $"{envelope.SenderId} is revoked");
        if (!_senders.TryGetValue(envelope.SenderId, out var key))
            return Reject(EnvelopeRejection.UnknownSender, $"{envelope.SenderId} is not known to {_receiver}");
        var message = Deserialize(envelope);
        return message is null
            ? Reject(EnvelopeRejection.Malformed, $"payload '{envelope.Manifest}' does not parse")
            : Finish(envelope, key, message);
    }

    private OpenedEnvelope? Precheck(SignedEnvelope envelope)
    {
        if (envelope.Payload.Length > _maxPayloadBytes)
            return Reject(EnvelopeRejection.Oversized, $"payload of {envelope.Payload.Length} bytes exceeds {_maxPayloadBytes}");
        if (string.IsNullOrEmpty(envelope.SenderId) || envelope.Sequence <= 0 || envelope.Signature.Length != 64)
            return Reject(EnvelopeRejection.Malformed, "envelope header is incomplete");
        return null;
    }

    private OpenedEnvelope Finish(SignedEnvelope envelope, VerificationKey key, object message)
    {
        var signed = SignedEnvelope.SignedPart(envelope.SenderId, envelope.Channel, envelope.Sequence, envelope.TimestampMs,
            envelope.Manifest, envelope.Payload, envelope.OffersSessions);
        if (!key.Verify(signed.Bytes, envelope.Signature))
            return Reject(EnvelopeRejection.BadSignature, $"signature of {envelope.SenderId} does not verify");

        var now = (_arrivalOfCurrent?.Invoke() ?? _clock.Now).ToUnixTimeMilliseconds();
        if (Math.Abs(now - envelope.TimestampMs) > _maxSkew.TotalMilliseconds)
            return Reject(EnvelopeRejection.StaleTimestamp,
                $"timestamp is {(now - envelope.TimestampMs) / 1000.0:0.#}s off, more than {_maxSkew.TotalSeconds:0.#}s");

        var windowKey = (envelope.SenderId, envelope.Channel);
        var window = _windows.GetValueOrDefault(windowKey);
        switch (window.Accept(envelope.Sequence))
        {
            case ReplayVerdict.TooOld:
                return Reject(EnvelopeRejection.TooOld,
                    $"sequence {envelope.Sequence} is older than the replay window (at {window.Highest})");
            case ReplayVerdict.Replayed:
                return Reject(EnvelopeRejection.Replayed, $"sequence {envelope.Sequence} of {envelope.SenderId}/{envelope.Channel} was seen");
        }

        _windows[windowKey] = window;
        return new OpenedEnvelope(message, envelope.SenderId, null, null);
    }

    private object? Deserialize(SignedEnvelope envelope) => Deserialize(envelope.Manifest, envelope.Payload.ToArray());

    private object? Deserialize(string manifest, byte[] payload)
    {
        try
        {
            var message = _serialization.Deserialize(payload, _protocolSerializerId, manifest);
            // What is inside an envelope or a record is a protocol message, never another wrapper.
            return message is ICpnsMessage and not ISecureWire ? message : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }

    private OpenedEnvelope Reject(EnvelopeRejection rejection, string detail)
    {
        _counts ??= new Dictionary<EnvelopeRejection, long>();
        _counts[rejection] = _counts.GetValueOrDefault(rejection) + 1;
        Common.CpnsMetrics.EnvelopesRefused.Add(1, Common.CpnsMetrics.Tag("reason", rejection.ToString()));
        return new OpenedEnvelope(null, null, rejection, detail);
    }
}
