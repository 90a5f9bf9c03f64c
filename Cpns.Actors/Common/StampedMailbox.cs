using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Cpns.Actors.Common;

/// <summary>A message queue that knows when the message its actor is working on reached it.</summary>
public interface IStampedQueue
{
    /// <summary>
    /// When the message last taken from the queue was put in it; null if it came back from the actor's stash and the queue
    /// does not remember its arrival (<see cref="StampedDequeMessageQueue"/> with no <c>remembered-arrivals</c>).
    /// </summary>
    DateTimeOffset? ArrivalOfCurrent { get; }
}

/// <summary>
/// When the message an actor is working on arrived. A freshness check measures a message's age at its arrival, not at
/// the time its receiver got round to it: a receiver's own queueing never turns a valid message into a refusal (design
/// §9). A replayed message is still refused by its sequence number, and one that arrives old by its timestamp.
/// </summary>
public static class MessageArrival
{
    /// <summary>The arrival of the current message; the clock's now where the mailbox keeps no stamps (or it was unstashed).</summary>
    public static DateTimeOffset Of(IActorContext context) =>
        context is ActorCell { Mailbox.MessageQueue: IStampedQueue { ArrivalOfCurrent: { } arrival } } ? arrival : context.System.Scheduler.Now;
}

/// <summary>
/// The default mailbox of every CPNS actor system (hocon/base.conf): Akka's unbounded queue with each message's arrival
/// kept beside it.
/// </summary>
public sealed class StampedMailbox(Settings settings, Config config)
    : MailboxType(settings, config), IProducesMessageQueue<StampedMessageQueue>
{
    public StampedMailbox() : this(null!, null!)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new StampedMessageQueue(system.Scheduler);
}

/// <summary>
/// The mailbox of the actors that stash (a persistent function stashes what comes while it persists): the stamped queue
/// with a deque. With <c>remembered-arrivals = N</c> (the server's functions, <c>cpns.network-mailbox</c>) a secure message
/// taken back from the stash keeps its arrival if it is among the last N taken; otherwise it counts as arriving then.
/// </summary>
public sealed class StampedDequeMailbox(Settings settings, Config config)
    : MailboxType(settings, config), IProducesMessageQueue<StampedDequeMessageQueue>
{
    /// <summary>Where the server's functions' mailbox is configured (hocon/base.conf), for <see cref="Props.WithMailbox"/>.</summary>
    public const string NetworkId = "cpns.network-mailbox";

    private readonly int _remembered = config?.GetInt("remembered-arrivals", 0) ?? 0;

    public StampedDequeMailbox() : this(null!, null!)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) =>
        new StampedDequeMessageQueue(system.Scheduler, _remembered);
}

public sealed class StampedMessageQueue(ITimeProvider clock) : IMessageQueue, IUnboundedMessageQueueSemantics, IStampedQueue
{
    private readonly ConcurrentQueue<(Envelope Envelope, DateTimeOffset ArrivedAt)> _queue = new();

    public DateTimeOffset? ArrivalOfCurrent { get; private set; }

    public bool HasMessages => !_queue.IsEmpty;

    public int Count => _queue.Count;

    public void Enqueue(IActorRef receiver, Envelope envelope) => _queue.Enqueue((envelope, clock.Now));

    public bool TryDequeue(out Envelope envelope)
    {
        if (_queue.TryDequeue(out var next))
        {
            (envelope, var arrivedAt) = next;
            ArrivalOfCurrent = arrivedAt;
            return true;
        }

        envelope = default;
        ArrivalOfCurrent = null;
        return false;
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}

public sealed class StampedDequeMessageQueue(ITimeProvider clock, int remembered = 0)
    : IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics, IStampedQueue
{
    private readonly StampedMessageQueue _queue = new(clock);

    // Taken back from the stash, taken before the queue; only the actor itself puts them back.
    private Stack<Envelope>? _unstashed;

    // The arrival of each of the last secure messages taken (made when first needed), by reference, oldest first: a
    // message the actor stashed is given back by reference.
    private Dictionary<object, DateTimeOffset>? _arrivals;
    private Queue<object>? _arrivalOrder;

    public DateTimeOffset? ArrivalOfCurrent { get; private set; }

    public bool HasMessages => Count > 0;

    public int Count => _queue.Count + (_unstashed?.Count ?? 0);

    public void Enqueue(IActorRef receiver, Envelope envelope) => _queue.Enqueue(receiver, envelope);

    public void EnqueueFirst(Envelope envelope) => (_unstashed ??= new Stack<Envelope>()).Push(envelope);

    public bool TryDequeue(out Envelope envelope)
    {
        if (_unstashed is { Count: > 0 })
        {
            envelope = _unstashed.Pop();
            ArrivalOfCurrent = _arrivals is not null && _arrivals.TryGetValue(envelope.Message, out var arrivedAt) ? arrivedAt : null;
            return true;
        }

        if (!_queue.TryDequeue(out envelope))
        {
            ArrivalOfCurrent = null;
            return false;
        }

        ArrivalOfCurrent = _queue.ArrivalOfCurrent;
        if (remembered > 0 && envelope.Message is Protocol.ISecureWire)
            Remember(envelope.Message, _queue.ArrivalOfCurrent!.Value);
        return true;
    }

    private void Remember(object message, DateTimeOffset arrivedAt)
    {
        _arrivals ??= new Dictionary<object, DateTimeOffset>(ReferenceEqualityComparer.Instance);
        _arrivalOrder ??= new Queue<object>();
        if (!_arrivals.TryAdd(message, arrivedAt))
            return; // the same instance taken again: its first arrival stands
        _arrivalOrder.Enqueue(message);
        if (_arrivalOrder.Count > remembered)
            _arrivals.Remove(_arrivalOrder.Dequeue());
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}
