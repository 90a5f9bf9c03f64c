using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>Backpressure: the server's key function, once behind, answers "busy, retry after" at once instead of going silent.</summary>
public sealed class BusyAnswerTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.keys.busy-mailbox-depth = 3")
{
    [Fact]
    public async Task An_overloaded_key_function_answers_every_request_some_with_busy_and_a_retry_time()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        var epoch = (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch;
        await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        var gateway = CreateTestProbe();
        const int requests = 60;
        for (var i = 0; i < requests; i++)
            Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", epoch, "g1")), gateway.Ref);

        var delivered = 0;
        var busyAnswers = new List<GroupKeyRefused>();
        for (var i = 0; i < requests; i++)
        {
            switch (Unseal<object>(await gateway.ExpectMsgAsync<SignedEnvelope>(Timeout)))
            {
                case GroupKeyDelivery delivery:
                    Assert.Equal(("grp", epoch), (delivery.GroupId, delivery.Epoch));
                    delivered++;
                    break;
                case GroupKeyRefused { Error: KeyError.Busy } refused:
                    Assert.Equal(("grp", epoch), (refused.GroupId, refused.Epoch));
                    busyAnswers.Add(refused);
                    break;
                case var other:
                    Assert.Fail($"unexpected answer {other}");
                    break;
            }
        }

        Output.WriteLine($"{delivered} delivered, {busyAnswers.Count} busy");
        Assert.True(delivered > 0, "the function still works through its queue");
        Assert.NotEmpty(busyAnswers);
        Assert.All(busyAnswers, b => Assert.InRange(b.RetryAfterMs, 100, 10_000));
        Assert.Equal(busyAnswers.Count, busy["server-cskmf"]);

        // The members still get the next epoch through the same function.
        Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        var next = await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var member in new[] { "p1", "p2" })
            await AwaitAssertAsync(async () => Assert.Equal(next.Epoch, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
    }
}
