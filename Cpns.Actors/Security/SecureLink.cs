using Akka.Actor;
using Akka.Event;
using Akka.Serialization;
using Cpns.Actors.Common;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// One function's end of the links between entities, and the one place that opens what arrives from another entity.
/// A first message to a peer is a signed envelope that offers a session; a peer that is trusted and that this function
/// keeps talking to gets a handshake (<see cref="SessionInitiator"/>), and from then on every message to it is an
/// AES-256-GCM record of that session. Envelopes stay for what is relayed end to end or broadcast (<see cref="Seal"/>).
/// Refusals are answered, counted and logged; nothing refused changes state. Owned by one actor.
/// </summary>
public sealed class SecureLink
{
    private readonly IActorContext _context;
    private readonly EnvelopeSealer _sealer;
    private readonly ILoggingAdapter _log;
    private readonly SessionPolicy _policy;
    private readonly SerializerWithStringManifest _serializer;
    private Dictionary<string, long>? _sessionCounts;
    private LinkSessions? _sessions;

    public SecureLink(IActorContext context, EntityIdentity identity, CpnsSettings settings, ILoggingAdapter log)
    {
        _context = context;
        _log = log;
        _policy = settings.Security.Sessions;
        var label = FlowTrace.Label(context.Self);
        // A restarted function starts its sequence numbers again: a fresh channel name keeps its old window apart.
        _sealer = new EnvelopeSealer(identity, $"{label}#{Guid.NewGuid():N}"[..(label.Length + 9)], context.System, _policy.Enabled);
        Guard = new EnvelopeGuard(label, context.System, settings, () => MessageArrival.Of(context));
        Identity = identity;
        _serializer = (SerializerWithStringManifest)context.System.Serialization.FindSerializerForType(typeof(ICpnsMessage));
    }

    public EntityIdentity Identity { get; }

    public EnvelopeGuard Guard { get; }

    /// <summary>A signed envelope, whoever it goes to: for what is relayed end to end, broadcast, or sent through a shard region.</summary>
    public SignedEnvelope Seal(object message) => _sealer.Seal(message);

    /// <summary>The message as it goes to <paramref name="to"/>: a record of their session, or a signed envelope.</summary>
    public ISecureWire SealFor(IActorRef to, object message)
    {
        var now = _context.System.Scheduler.Now;
        if (_sessions?.Current(to, now) is { } session)
        {
            var record = session.Seal(_serializer.Manifest(message), _serializer.ToBinary(message), now);
            _sessions.Retain(record, to, message);
            Count("RecordsSent");
            return record;
        }

        if (_sessions?.ShouldStart(to, now, Guard) is { } peerId)
            StartHandshake(to, peerId, now);
        return _sealer.Seal(message);
    }

    public void Send(IActorRef to, object message) => to.Tell(SealFor(to, message), _context.Self);

    /// <summary>Sends a signed envelope even where a session exists: for a request the receiver relays on to a third entity.</summary>
    public void SendSigned(IActorRef to, object message) => to.Tell(_sealer.Seal(message), _context.Self);

    /// <summary>Opens what a trusted sender sent; on refusal answers it, counts it and returns false (as for handshake steps).</summary>
    public bool TryOpen(ISecureWire wire, out object message, out string senderId) => Open(wire, null, out message, out senderId);

    /// <summary>Opens what a sender that may be new sent: its key then comes from the payload (a registration hello).</summary>
    public bool TryOpenSelfSigned(ISecureWire wire, Func<object, Octets?> signingKeyOf, out object message, out string senderId) =>
        Open(wire, signingKeyOf, out message, out senderId);

    private Dictionary<string, long>? _refusals;

    /// <summary>Counts a message that opened but that the function refused (e.g. signed by one entity about another).</summary>
    public void CountRefusal(string reason)
    {
        _refusals ??= new Dictionary<string, long>(StringComparer.Ordinal);
        _refusals[reason] = _refusals.GetValueOrDefault(reason) + 1;
    }

    public SecurityCounters Counters() => new(FlowTrace.Label(_context.Self),
        Guard.Counts.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value)
            .Concat((_sessionCounts ?? []).Where(kv => kv.Key.StartsWith("Session", StringComparison.Ordinal)))
            .Concat(_refusals ?? [])
            .ToDictionary(kv => kv.Key, kv => kv.Value))
    {
        Sessions = new Dictionary<string, long>(_sessionCounts ?? []) { ["Open"] = _sessions?.OpenCount ?? 0 },
    };

    private bool Open(ISecureWire wire, Func<object, Octets?>? signingKeyOf, out object message, out string senderId)
    {
        message = null!;
        senderId = null!;
        switch (wire)
        {
            case SignedEnvelope envelope:
                var opened = signingKeyOf is null ? Guard.Open(envelope) : Guard.OpenSelfSigned(envelope, signingKeyOf);
                if (!Settle(opened, $"{envelope.SenderId}/{envelope.Channel} #{envelope.Sequence}", out message, out senderId))
                    return false;
                if (envelope.OffersSessions && _policy.Enabled && !_context.Sender.IsNobody())
                    (_sessions ??= new LinkSessions(_policy)).Offered(_context.Sender, senderId);
                return true;
            case SessionRecord record:
                return OpenRecord(record, signingKeyOf, out message, out senderId);
            case SessionHello hello:
                OnHello(hello);
                return false;
            case SessionAccept accept:
                OnAccept(accept);
                return false;
            case SessionConfirm confirm:
                OnConfirm(confirm);
                return false;
            case SessionRefused refused:
                OnRefused(refused);
                return false;
            default:
                return false;
        }
    }

    private bool OpenRecord(SessionRecord record, Func<object, Octets?>? signingKeyOf, out object message, out string senderId)
    {
        message = null!;
        senderId = null!;
        var now = MessageArrival.Of(_context);
        if (_sessions?.ById(record.SessionId) is not { } session)
            return RefuseRecord(record, SessionRefusal.UnknownSession, "record of a session this function does not hold");
        if (record.Ciphertext.Length > Guard.MaxPayloadBytes + SealedLayout.TagSize)
            return Settle(Guard.Refuse(EnvelopeRejection.Oversized, $"record of {record.Ciphertext.Length} bytes"), Describe(record, session),
                out message, out senderId);

        byte[] plaintext;
        try
        {
            plaintext = session.Open(record, now);
        }
        catch (SessionRefusedException refused)
        {
            if (refused.Reason == SessionRefusal.Expired)
                _sessions.Drop(session);
            return RefuseRecord(record, refused.Reason, refused.Message);
        }

        var admitted = Guard.Admit(session.PeerId, session.PeerKey, record.Manifest, plaintext);
        if (admitted.Accepted && signingKeyOf?.Invoke(admitted.Message!) is { } named && named != session.PeerKey)
            admitted = Guard.Refuse(EnvelopeRejection.BadSignature,
                $"{session.PeerId} names a key other than its session's: a new key comes in a signed envelope");
        if (admitted.Rejection is EnvelopeRejection.Revoked or EnvelopeRejection.UnknownSender)
            _sessions.Drop(session);
        if (!Settle(admitted, Describe(record, session), out message, out senderId))
            return false;
        Guard.LastSelfSignedKey = session.PeerKey;
        Count("RecordsOpened");
        return true;
    }

    private static string Describe(SessionRecord record, Session session) => $"{session.PeerId}/session #{record.Sequence}";

    private void StartHandshake(IActorRef peer, string peerId, DateTimeOffset now)
    {
        var initiator = new SessionInitiator(End(), peerId);
        _sessions!.Initiating(peer, initiator, now);
        peer.Tell(initiator.Hello, _context.Self);
        Count("HandshakesStarted");
    }

    private void OnHello(SessionHello hello)
    {
        var now = MessageArrival.Of(_context);
        if (!_policy.Enabled)
        {
            RefuseHandshake(hello, SessionRefusal.UnknownPeer, "sessions are off here");
            return;
        }

        _sessions ??= new LinkSessions(_policy);
        if (!_sessions.HasRoomToRespond(now))
        {
            RefuseHandshake(hello, SessionRefusal.Overloaded, $"{_policy.MaxPending} handshakes are waiting");
            return;
        }

        try
        {
            var responder = SessionResponder.Accept(End(), hello, now);
            _sessions.Responding(_context.Sender, responder, now);
            _context.Sender.Tell(responder.Answer, _context.Self);
        }
        catch (SessionRefusedException refused)
        {
            RefuseHandshake(hello, refused.Reason, refused.Message);
        }
    }

    private void OnAccept(SessionAccept accept)
    {
        var now = MessageArrival.Of(_context);
        if (_sessions?.TakeInitiator(accept.HelloNonce, _context.Sender, now) is not { } initiator)
        {
            Refused(SessionRefusal.UnknownSession, $"an answer from {accept.ResponderId} to no handshake of this function");
            return;
        }

        try
        {
            var (session, confirm) = initiator.Complete(accept, now, _policy.Limits);
            _context.Sender.Tell(confirm, _context.Self);
            _sessions.Established(_context.Sender, session);
            Count("Established");
        }
        catch (SessionRefusedException refused)
        {
            _sessions.Decline(_context.Sender);
            Refused(refused.Reason, refused.Message);
        }
    }

    private void OnConfirm(SessionConfirm confirm)
    {
        var now = MessageArrival.Of(_context);
        if (_sessions?.TakeResponder(confirm.SessionId, _context.Sender, now) is not { } responder)
        {
            Refused(SessionRefusal.UnknownSession, "a confirmation of no handshake this function answered");
            return;
        }

        try
        {
            _sessions.Established(_context.Sender, responder.Confirm(confirm, now, _policy.Limits));
            Count("Established");
        }
        catch (SessionRefusedException refused)
        {
            Refused(refused.Reason, refused.Message);
        }
    }

    /// <summary>
    /// A peer refused a handshake (this function then sends it envelopes only) or a record: one it never opened — its end
    /// restarted or the session ran out — is sent again as a signed envelope, so a restart loses nothing in flight.
    /// </summary>
    private void OnRefused(SessionRefused refused)
    {
        if (_sessions is null)
            return;
        if (refused.Sequence == 0)
        {
            // A peer too busy for a handshake now, or that does not trust this entity yet (it is still registering), may
            // take one later; any other refusal means envelopes only.
            if (_sessions.TakeInitiator(refused.SessionId, _context.Sender, MessageArrival.Of(_context)) is not null &&
                refused.Reason is not (SessionRefusal.Overloaded or SessionRefusal.UnknownPeer))
                _sessions.Decline(_context.Sender);
            return;
        }

        // Only a peer that no longer holds the session makes it end here (if it is one held with that peer), even when
        // the refused record is no longer kept; each kept record it refused goes again, signed.
        if (refused.Reason is not (SessionRefusal.UnknownSession or SessionRefusal.Expired))
            return;
        if (_sessions.IsWith(refused.SessionId, _context.Sender))
            _sessions.DropId(refused.SessionId);
        if (_sessions.TakeRetained(refused.SessionId, refused.Sequence, _context.Sender) is { } unsent)
        {
            _context.Sender.Tell(_sealer.Seal(unsent), _context.Self);
            Count("Resent");
        }
    }

    private SessionEnd End() => new(Identity) { KnownKeys = Guard.KeyOf };

    private bool RefuseRecord(SessionRecord record, SessionRefusal reason, string detail)
    {
        Refused(reason, detail);
        if (!_context.Sender.IsNobody())
            _context.Sender.Tell(new SessionRefused(record.SessionId, record.Sequence, reason), _context.Self);
        return false;
    }

    /// <summary>A refused hello is answered with its own nonce in place of a session id, and sequence 0.</summary>
    private void RefuseHandshake(SessionHello hello, SessionRefusal reason, string detail)
    {
        Refused(reason, $"handshake of {hello.InitiatorId}: {detail}");
        if (!_context.Sender.IsNobody())
            _context.Sender.Tell(new SessionRefused(hello.Nonce, 0, reason), _context.Self);
    }

    private void Refused(SessionRefusal reason, string detail)
    {
        Count("Session" + reason);
        Common.CpnsMetrics.EnvelopesRefused.Add(1, Common.CpnsMetrics.Tag("reason", "Session" + reason));
        _log.Warning("{0}: refused a session message: {1} ({2})", FlowTrace.Label(_context.Self), reason, detail);
    }

    private void Count(string what)
    {
        _sessionCounts ??= new Dictionary<string, long>(StringComparer.Ordinal);
        _sessionCounts[what] = _sessionCounts.GetValueOrDefault(what) + 1;
    }

    private bool Settle(OpenedEnvelope opened, string what, out object message, out string senderId)
    {
        if (opened.Accepted)
        {
            message = opened.Message!;
            senderId = opened.SenderId!;
            return true;
        }

        _log.Warning("{0}: refused {1}: {2} ({3})", FlowTrace.Label(_context.Self), what, opened.Rejection, opened.Detail);
        if (!_context.Sender.IsNobody())
            _context.Sender.Tell(new EnvelopeRejected(opened.Rejection!.Value, opened.Detail!), _context.Self);
        message = null!;
        senderId = null!;
        return false;
    }
}

/// <summary>
/// The sessions of one function, by peer (the actor it talks to) and by session id, with the handshakes under way and
/// the last records sent (kept to send again if the peer lost its session). Pure state: no actor, no clock of its own.
/// </summary>
internal sealed class LinkSessions(SessionPolicy policy)
{
    private const int Retained = 32;

    private readonly Dictionary<IActorRef, Session> _byPeer = new();
    private readonly Dictionary<Octets, Session> _byId = new();
    private readonly Dictionary<IActorRef, Session> _previous = new();
    private readonly Dictionary<IActorRef, (string PeerId, int Sent)> _offered = new();
    // The rest is made when first needed and let go when empty again: a large network has a few functions per device,
    // and each of them is between handshakes nearly all its life.
    private HashSet<IActorRef>? _declined;
    // Under way, by the hello's nonce (initiator) and the session id (responder), with the peer each is with.
    private Dictionary<Octets, Pending<SessionInitiator>>? _initiating;
    private Dictionary<Octets, Pending<SessionResponder>>? _responding;
    private Dictionary<IActorRef, DateTimeOffset>? _handshaking;
    private Dictionary<(Octets, long), (IActorRef Peer, object Message)>? _retained;
    private Queue<(Octets, long)>? _retainedOrder;

    public int OpenCount => _byId.Count;

    public Session? Current(IActorRef peer, DateTimeOffset now)
    {
        if (!_byPeer.TryGetValue(peer, out var session))
            return null;
        if (!session.IsExpired(now))
            return session;
        Drop(session);
        return null;
    }

    public Session? ById(Octets sessionId) => _byId.GetValueOrDefault(sessionId);

    public void Offered(IActorRef peer, string peerId)
    {
        if (!_offered.TryGetValue(peer, out var known) || known.PeerId != peerId)
            _offered[peer] = (peerId, 0);
    }

    /// <summary>The peer's id when a handshake with it should start now: it offered, is trusted, and this is a repeat send.</summary>
    public string? ShouldStart(IActorRef peer, DateTimeOffset now, EnvelopeGuard guard)
    {
        if (!policy.Enabled || !_offered.TryGetValue(peer, out var offer) || _declined?.Contains(peer) == true)
            return null;
        // One handshake with a peer at a time, whichever end started it.
        if (_handshaking is not null && _handshaking.TryGetValue(peer, out var started) && now - started < policy.HandshakeTimeout)
            return null;
        if (guard.KeyOf(offer.PeerId) is null)
            return null;
        _offered[peer] = offer with { Sent = offer.Sent + 1 };
        return offer.Sent + 1 >= policy.AfterMessages ? offer.PeerId : null;
    }

    public void Initiating(IActorRef peer, SessionInitiator initiator, DateTimeOffset now)
    {
        Prune(_initiating ??= new(), now);
        _initiating[initiator.Hello.Nonce] = new(peer, initiator, now);
        (_handshaking ??= new())[peer] = now;
    }

    /// <summary>The handshake this function began with that peer under that hello nonce, if it is still under way (once).</summary>
    public SessionInitiator? TakeInitiator(Octets helloNonce, IActorRef peer, DateTimeOffset now) => Take(ref _initiating, helloNonce, peer, now);

    public bool HasRoomToRespond(DateTimeOffset now)
    {
        if (_responding is null || _responding.Count < policy.MaxPending)
            return true;
        Prune(_responding, now);
        return _responding.Count < policy.MaxPending;
    }

    public void Responding(IActorRef peer, SessionResponder responder, DateTimeOffset now)
    {
        (_responding ??= new())[responder.SessionId] = new(peer, responder, now);
        (_handshaking ??= new())[peer] = now;
    }

    public SessionResponder? TakeResponder(Octets sessionId, IActorRef peer, DateTimeOffset now) => Take(ref _responding, sessionId, peer, now);

    private readonly record struct Pending<T>(IActorRef Peer, T Step, DateTimeOffset Started);

    private T? Take<T>(ref Dictionary<Octets, Pending<T>>? pending, Octets key, IActorRef peer, DateTimeOffset now) where T : class
    {
        if (pending is null || !pending.TryGetValue(key, out var step) || !step.Peer.Equals(peer))
            return null;
        pending.Remove(key);
        if (pending.Count == 0)
            pending = null;
        HandshakeOver(peer);
        return now - step.Started < policy.HandshakeTimeout ? step.Step : null;
    }

    private void HandshakeOver(IActorRef peer)
    {
        if (_handshaking is not null && _handshaking.Remove(peer) && _handshaking.Count == 0)
            _handshaking = null;
    }

    /// <summary>Forgets handshakes that did not finish in time, so a peer that never finishes costs bounded memory.</summary>
    private void Prune<T>(Dictionary<Octets, Pending<T>> pending, DateTimeOffset now)
    {
        foreach (var (key, step) in pending.Where(kv => now - kv.Value.Started >= policy.HandshakeTimeout).ToList())
        {
            pending.Remove(key);
            HandshakeOver(step.Peer);
        }
    }

    public void Decline(IActorRef peer) => (_declined ??= []).Add(peer);

    /// <summary>
    /// A new session with a peer. The one before it stays open for receiving (both ends may have started a handshake at
    /// once, or records of the old one are still on their way); the one before that is closed.
    /// </summary>
    public void Established(IActorRef peer, Session session)
    {
        if (_byPeer.Remove(peer, out var before))
        {
            if (_previous.Remove(peer, out var older))
                DropId(older.Id);
            _previous[peer] = before;
        }

        _byPeer[peer] = session;
        _byId[session.Id] = session;
    }

    public void Drop(Session session) => DropId(session.Id);

    /// <summary>Whether the session is (or was, until the last handshake) the one with that peer.</summary>
    public bool IsWith(Octets sessionId, IActorRef peer) =>
        _byPeer.TryGetValue(peer, out var current) && current.Id == sessionId ||
        _previous.TryGetValue(peer, out var previous) && previous.Id == sessionId;

    public void DropId(Octets sessionId)
    {
        if (!_byId.Remove(sessionId, out var session))
            return;
        foreach (var peer in _byPeer.Where(kv => kv.Value == session).Select(kv => kv.Key).ToList())
            _byPeer.Remove(peer);
        foreach (var peer in _previous.Where(kv => kv.Value == session).Select(kv => kv.Key).ToList())
            _previous.Remove(peer);
        session.Dispose();
    }

    public void Retain(SessionRecord record, IActorRef peer, object message)
    {
        var key = (record.SessionId, record.Sequence);
        (_retained ??= new())[key] = (peer, message);
        (_retainedOrder ??= new()).Enqueue(key);
        while (_retainedOrder.Count > Retained)
            _retained.Remove(_retainedOrder.Dequeue());
    }

    /// <summary>The message of a record sent to exactly this peer, if it is still kept (once).</summary>
    public object? TakeRetained(Octets sessionId, long sequence, IActorRef peer) =>
        _retained is not null && _retained.TryGetValue((sessionId, sequence), out var kept) && kept.Peer.Equals(peer) &&
        _retained.Remove((sessionId, sequence))
            ? kept.Message
            : null;
}
