using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Common;

/// <summary>The mailbox of a PNE's functions: first in, first out, per sender too, with every message counted once.</summary>
public sealed class CompactMailboxTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    [Fact]
    public void Messages_from_several_senders_at_once_come_out_once_each_and_in_each_senders_order()
    {
        var queue = new CompactMessageQueue(Sys.Scheduler);
        const int senders = 4;
        const int each = 20_000;
        Parallel.For(0, senders, sender =>
        {
            for (var i = 0; i < each; i++)
                queue.Enqueue(ActorRefs.Nobody, new Envelope((sender, i), ActorRefs.NoSender));
        });

        Assert.Equal(senders * each, queue.Count);
        var next = new int[senders];
        while (queue.TryDequeue(out var envelope))
        {
            var (sender, i) = ((int, int))envelope.Message;
            Assert.Equal(next[sender]++, i);
        }

        Assert.All(next, n => Assert.Equal(each, n));
        Assert.False(queue.HasMessages);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task A_pne_function_runs_on_it_and_what_is_left_at_its_stop_goes_to_dead_letters()
    {
        var actor = Sys.ActorOf(Props.Create(() => new Echo()).WithMailbox(CompactMailbox.Id));
        Assert.Equal(CompactMailbox.Id, Cpns.Actors.Pne.PneEntity.Props(Cpns.Actors.Security.EntityIdentity.Generate("p1", Cpns.Actors.Protocol.EntityKind.Pne),
            Secrets.TrustAnchor, TestActor, Settings).Mailbox);
        for (var i = 0; i < 100; i++)
            actor.Tell(i, TestActor);
        for (var i = 0; i < 100; i++)
            Assert.Equal(i, await ExpectMsgAsync<int>(Timeout));
        Assert.IsType<CompactMessageQueue>(((ActorCell)((ActorRefWithCell)actor).Underlying).Mailbox!.MessageQueue);

        var queue = new CompactMessageQueue(Sys.Scheduler);
        queue.Enqueue(actor, new Envelope("left over", TestActor));
        var deadLetters = new CompactMessageQueue(Sys.Scheduler);
        queue.CleanUp(actor, deadLetters);
        Assert.True(deadLetters.TryDequeue(out var dead));
        Assert.Equal("left over", dead.Message);
        Assert.False(queue.HasMessages);
    }

    private sealed class Echo : ReceiveActor
    {
        public Echo() => ReceiveAny(message => Sender.Tell(message));
    }
}
