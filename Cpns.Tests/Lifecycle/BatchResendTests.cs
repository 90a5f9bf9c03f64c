using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>A PN GW whose batch of PNE registrations the registry does not answer sends it again, each time after twice the wait.</summary>
public sealed class BatchResendTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.registration.batch-window = 0s
    cpns.timeouts.batch-reply = 200ms
    """)
{
    [Fact]
    public async Task An_unanswered_batch_goes_again_after_a_wait_that_doubles_and_registers_once_the_registry_answers()
    {
        await StartServerAsync();
        var gateway = StartGateway("g1");
        await AwaitRegisteredAsync([gateway]);
        EnrolmentTokenFor("p1", EntityKind.Pne);
        await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout); // p1 is provisioned before the registry is held

        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(Warning));
        var waits = new List<string>();
        await WhileHeldAsync(Server.Registry, async _ =>
        {
            StartPne("p1", "g1");
            while (waits.Count < 3)
            {
                var warning = await warnings.ExpectMsgAsync<Warning>(Timeout);
                if (warning.Message.ToString() is { } text && text.Contains("no answer to a batch of 1 PNE registrations"))
                    waits.Add(text[(text.IndexOf("(waiting ", StringComparison.Ordinal) + 9)..text.IndexOf(" s this time", StringComparison.Ordinal)]);
            }
        });

        Assert.Equal(["0.4", "0.8", "1.6"], waits); // 200 ms, then twice that after each wait that ran out
        await AwaitRegisteredAsync([Pnes["p1"]]);
        Assert.Equal(["p1"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Select(p => p.DeviceId));
    }
}
