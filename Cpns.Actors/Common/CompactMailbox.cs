using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Cpns.Actors.Common;

/// <summary>
/// The mailbox of the actors there are very many of (a PNE's functions): a lock around a queue that starts empty and grows
/// with what waits. Akka's default queue allocates a first segment of 32 slots for every actor, about 1 KB each, while a
/// PNE's functions rarely hold more than a few messages; the lock is uncontended for an actor that few others talk to.
/// </summary>
public sealed class CompactMailbox(Settings settings, Config config)
    : MailboxType(settings, config), IProducesMessageQueue<CompactMessageQueue>
{
    /// <summary>Where the mailbox is configured (hocon/base.conf), for <see cref="Props.WithMailbox"/>.</summary>
    public const string Id = "cpns.compact-mailbox";

    public CompactMailbox() : this(null!, null!)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new CompactMessageQueue(system.Scheduler);
}

/// <summary>Keeps each message's arrival as <see cref="StampedMessageQueue"/> does.</summary>
public sealed class CompactMessageQueue(ITimeProvider clock) : IMessageQueue, IUnboundedMessageQueueSemantics, IStampedQueue
{
    /// <summary>After a burst has drained, a queue that grew beyond this gives its array back.</summary>
    private const int KeptCapacity = 16;

    private readonly Queue<(Envelope Envelope, DateTimeOffset ArrivedAt)> _queue = new();
    private int _count;
    private int _highWater;

    public DateTimeOffset? ArrivalOfCurrent { get; private set; }

    public bool HasMessages => Volatile.Read(ref _count) > 0;

    public int Count => Volatile.Read(ref _count);

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        var arrivedAt = clock.Now;
        lock (_queue)
        {
            _queue.Enqueue((envelope, arrivedAt));
            _highWater = Math.Max(_highWater, _queue.Count);
            Volatile.Write(ref _count, _queue.Count);
        }
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_queue)
        {
            if (!_queue.TryDequeue(out var next))
            {
                envelope = default;
                return false;
            }

            (envelope, var arrivedAt) = next;
            ArrivalOfCurrent = arrivedAt;
            Volatile.Write(ref _count, _queue.Count);
            if (_queue.Count == 0 && _highWater > KeptCapacity)
            {
                _queue.TrimExcess();
                _highWater = 0;
            }

            return true;
        }
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}
