using Akka.Actor;
using Akka.Event;
using Akka.TestKit;
using Cpns.Actors;
using Cpns.Actors.Common;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Design §9: a receiver's own queueing never turns a valid message into a refusal. An envelope's timestamp is checked
/// against the time it reached the receiver's mailbox, kept by the mailbox, with time driven by the test scheduler.
/// </summary>
public sealed class ArrivalFreshnessTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
    """)
{
    private static readonly EntityIdentity SenderIdentity = EntityIdentity.Generate("g1", EntityKind.PnGateway);
    private static readonly EntityIdentity Receiver = EntityIdentity.Generate("p1", EntityKind.Pne);

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private sealed record Hold(SemaphoreSlim Gate) : INoSerializationVerificationNeeded;

    private sealed record Opened(bool Accepted, IReadOnlyDictionary<EnvelopeRejection, long> Refusals) : INoSerializationVerificationNeeded;

    /// <summary>A function that opens what it gets through its link; told to hold, it works on nothing until released.</summary>
    private sealed class Opener : UntypedActor
    {
        private readonly SecureLink _link;

        public Opener(CpnsSettings settings)
        {
            _link = new SecureLink(Context, Receiver, settings, Context.GetLogger());
            _link.Guard.Trust(SenderIdentity.DeviceId, SenderIdentity.PublicKeys.Signing);
        }

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case Hold hold:
                    Context.Sender.Tell("holding");
                    hold.Gate.Wait();
                    break;
                case ISecureWire wire:
                    var accepted = _link.TryOpen(wire, out _, out _);
                    Context.Sender.Tell(new Opened(accepted, _link.Guard.Counts.ToDictionary()));
                    break;
            }
        }
    }

    private SignedEnvelope Envelope(long sequence, long timestampMs)
    {
        var payload = new GroupKeyRequest("grp", 1, "g1");
        var bytes = Octets.Own(Sys.Serialization.FindSerializerFor(payload).ToBinary(payload));
        var signature = SenderIdentity.Sign(SignedEnvelope.SignedPart("g1", "c", sequence, timestampMs, nameof(GroupKeyRequest), bytes).Bytes);
        return new SignedEnvelope("g1", "c", sequence, timestampMs, nameof(GroupKeyRequest), bytes, signature);
    }

    [Fact]
    public async Task An_envelope_that_waited_in_a_busy_receivers_mailbox_opens_and_one_that_arrived_old_is_refused()
    {
        var skew = Settings.Security.EnvelopeMaxSkew;
        var opener = Sys.ActorOf(Props.Create(() => new Opener(Settings)));
        using var gate = new SemaphoreSlim(0);
        opener.Tell(new Hold(gate), TestActor);
        await ExpectMsgAsync("holding", Timeout);

        var sentAt = Clock.Now.ToUnixTimeMilliseconds();
        opener.Tell(Envelope(1, sentAt), TestActor); // arrives now; the receiver is busy
        Clock.Advance(skew * 2);
        gate.Release();
        var waited = await ExpectMsgAsync<Opened>(Timeout);
        Assert.True(waited.Accepted, string.Join(", ", waited.Refusals));

        opener.Tell(Envelope(2, sentAt), TestActor); // signed as long ago, arriving only now
        Assert.Equal(EnvelopeRejection.StaleTimestamp, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        var late = await ExpectMsgAsync<Opened>(Timeout);
        Assert.False(late.Accepted);
        Assert.Equal(1, late.Refusals[EnvelopeRejection.StaleTimestamp]);
    }

    [Fact]
    public async Task Every_actor_s_mailbox_keeps_arrivals_also_a_persistent_actor_s()
    {
        var plain = Sys.ActorOf(Props.Create(() => new Opener(Settings)));
        plain.Tell(new Hold(new SemaphoreSlim(1)), TestActor);
        await ExpectMsgAsync("holding", Timeout);
        Assert.IsType<StampedMessageQueue>(((ActorCell)((ActorRefWithCell)plain).Underlying).Mailbox!.MessageQueue);

        await StartServerAsync(); // the registry is persistent: its stash needs a deque
        Assert.IsType<StampedDequeMessageQueue>(((ActorCell)((ActorRefWithCell)Server.Registry).Underlying).Mailbox!.MessageQueue);
    }

    /// <summary>An opener that stashes what comes while it is "persisting", and opens it once it is done, as a persistent function does.</summary>
    private sealed class StashingOpener : UntypedActor, IWithUnboundedStash
    {
        private readonly SecureLink _link;

        public StashingOpener(CpnsSettings settings)
        {
            _link = new SecureLink(Context, Receiver, settings, Context.GetLogger());
            _link.Guard.Trust(SenderIdentity.DeviceId, SenderIdentity.PublicKeys.Signing);
        }

        public IStash Stash { get; set; } = null!;

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case Hold hold:
                    Context.Sender.Tell("holding");
                    hold.Gate.Wait();
                    break;
                case "persisted":
                    Stash.UnstashAll();
                    Become(Opening);
                    break;
                default:
                    Stash.Stash();
                    break;
            }
        }

        private void Opening(object message)
        {
            if (message is ISecureWire wire)
                Context.Sender.Tell(new Opened(_link.TryOpen(wire, out _, out _), _link.Guard.Counts.ToDictionary()));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_server_function_s_stash_gives_back_an_envelope_with_its_arrival(bool networkMailbox)
    {
        var props = Props.Create(() => new StashingOpener(Settings));
        var opener = Sys.ActorOf(networkMailbox ? props.WithMailbox(StampedDequeMailbox.NetworkId) : props);
        using var gate = new SemaphoreSlim(0);
        opener.Tell(new Hold(gate), TestActor);
        await ExpectMsgAsync("holding", Timeout);

        opener.Tell(Envelope(1, Clock.Now.ToUnixTimeMilliseconds()), TestActor); // arrives now, is stashed once taken
        opener.Tell("persisted", TestActor);
        Clock.Advance(Settings.Security.EnvelopeMaxSkew * 2);
        gate.Release();

        if (networkMailbox)
        {
            // The server's functions remember the arrival of what they stash: it opens.
            Assert.True((await ExpectMsgAsync<Opened>(Timeout)).Accepted);
        }
        else
        {
            // Any other stashing actor counts it as arriving when it comes back from the stash.
            Assert.Equal(EnvelopeRejection.StaleTimestamp, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
            Assert.False((await ExpectMsgAsync<Opened>(Timeout)).Accepted);
        }
    }
}
