using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// One function's end of the links between entities: it seals what the function sends (its own channel and
/// sequence numbers, the entity's signature) and opens what it receives (refusals answered, counted, logged).
/// Owned by one actor.
/// </summary>
public sealed class SecureLink
{
    private readonly IActorContext _context;
    private readonly EnvelopeSealer _sealer;
    private readonly ILoggingAdapter _log;

    public SecureLink(IActorContext context, EntityIdentity identity, CpnsSettings settings, ILoggingAdapter log)
    {
        _context = context;
        _log = log;
        var label = FlowTrace.Label(context.Self);
        // A restarted function starts its sequence numbers again: a fresh channel name keeps its old window apart.
        _sealer = new EnvelopeSealer(identity, $"{label}#{Guid.NewGuid():N}"[..(label.Length + 9)], context.System);
        Guard = new EnvelopeGuard(label, context.System, settings);
        Identity = identity;
    }

    public EntityIdentity Identity { get; }

    public EnvelopeGuard Guard { get; }

    public SignedEnvelope Seal(object message) => _sealer.Seal(message);

    public void Send(IActorRef to, object message) => to.Tell(_sealer.Seal(message), _context.Self);

    /// <summary>Opens an envelope from a trusted sender; on refusal answers <see cref="EnvelopeRejected"/> and returns false.</summary>
    public bool TryOpen(SignedEnvelope envelope, out object message, out string senderId) =>
        Settle(Guard.Open(envelope), envelope, out message, out senderId);

    /// <summary>Opens an envelope whose sender may be new: its key then comes from the payload (a registration hello).</summary>
    public bool TryOpenSelfSigned(SignedEnvelope envelope, Func<object, Octets?> signingKeyOf, out object message,
        out string senderId) =>
        Settle(Guard.OpenSelfSigned(envelope, signingKeyOf), envelope, out message, out senderId);

    public SecurityCounters Counters() => new(FlowTrace.Label(_context.Self),
        Guard.Counts.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value));

    private bool Settle(OpenedEnvelope opened, SignedEnvelope envelope, out object message, out string senderId)
    {
        if (opened.Accepted)
        {
            message = opened.Message!;
            senderId = opened.SenderId!;
            return true;
        }

        _log.Warning("{0}: refused an envelope from {1}/{2} #{3}: {4} ({5})", FlowTrace.Label(_context.Self), envelope.SenderId,
            envelope.Channel, envelope.Sequence, opened.Rejection, opened.Detail);
        if (!_context.Sender.IsNobody())
            _context.Sender.Tell(new EnvelopeRejected(opened.Rejection!.Value, opened.Detail!), _context.Self);
        message = null!;
        senderId = null!;
        return false;
    }
}
