using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Cpns.Actors.Common;

/// <summary>A message queue that knows when the message its actor is working on reached it.</summary>
public interface IStampedQueue
{
    /// <summary>When the message last taken from the queue was put in it; null if it came back from the actor's stash.</summary>
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
/// The default mailbox of every CPNS actor system (hocon/base.conf), also where an actor needs a deque (a persistent
/// actor's stash): Akka's unbounded queue with each message's arrival kept beside it.
/// </summary>
public sealed class StampedMailbox(Settings settings, Config config)
    : MailboxType(settings, config), IProducesMessageQueue<StampedMessageQueue>
{
    public StampedMailbox() : this(null!, null!)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new StampedMessageQueue(system.Scheduler);
}

public sealed class StampedMessageQueue(ITimeProvider clock) : IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics, IStampedQueue
{
    private readonly ConcurrentQueue<(Envelope Envelope, DateTimeOffset ArrivedAt)> _queue = new();

    // Unstashed messages, taken before the queue; only the actor itself puts them back.
    private Stack<Envelope>? _unstashed;

    public DateTimeOffset? ArrivalOfCurrent { get; private set; }

    public bool HasMessages => Count > 0;

    public int Count => _queue.Count + (_unstashed?.Count ?? 0);

    public void Enqueue(IActorRef receiver, Envelope envelope) => _queue.Enqueue((envelope, clock.Now));

    public void EnqueueFirst(Envelope envelope) => (_unstashed ??= new Stack<Envelope>()).Push(envelope);

    public bool TryDequeue(out Envelope envelope)
    {
        if (_unstashed is { Count: > 0 })
        {
            envelope = _unstashed.Pop();
            ArrivalOfCurrent = null;
            return true;
        }

        if (_queue.TryDequeue(out var next))
        {
            (envelope, var arrivedAt) = next;
            ArrivalOfCurrent = arrivedAt;
            return true;
        }

        envelope = default;
        return false;
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}
