using System.Text;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// On-demand key delivery (seed §5.3.1.9.5: "a Group Key is delivered only when it is needed by a PNE"): with
/// <c>cpns.keys.pull-on-demand</c>, a pull group's member fetches the key when it first encrypts or opens content.
/// </summary>
public sealed class OnDemandPullTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.keys.pull-on-demand = on")
{
    private async Task<long?> HeldEpochAsync(string pne, string groupId) => (await KeyStateAsync(Pnes[pne], groupId)).CurrentEpoch;

    private async Task AwaitNoticedAsync(string pne, string groupId, long epoch) =>
        await AwaitAssertAsync(async () => Assert.Contains(
            (await Pnes[pne].Ask<LocalGroups>(GetLocalGroups.Instance, Timeout)).Groups, g => g.GroupId == groupId && g.Epoch == epoch), Timeout);

    [Fact]
    public async Task A_pull_members_key_is_fetched_when_it_first_sends_or_opens_and_a_push_group_is_not_affected()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g2", ["p3"] = "g2" });
        var flow = new FlowRecorder(this);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("lazy", "p1", DeliveryMode.Pull, ["p1", "p2", "p3"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("eager", "p1", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        // Every member knows of epoch 1 of the pull group, and none has its key: none was needed yet.
        foreach (var pne in new[] { "p1", "p2", "p3" })
            await AwaitNoticedAsync(pne, "lazy", 1);
        await AwaitAssertAsync(async () => Assert.Equal(1, await HeldEpochAsync("p2", "eager")), Timeout);
        foreach (var pne in new[] { "p1", "p2", "p3" })
            Assert.Null(await HeldEpochAsync(pne, "lazy"));

        // p1 sends: its encryption waits for the pull it starts, then goes out under epoch 1.
        var sent = Assert.IsType<ContentAccepted>(await Pnes["p1"].Ask<object>(
            new SendContent("d-1", "s-chat", "lazy", Octets.Own("first"u8.ToArray())), Timeout));
        Assert.Equal(1, sent.Epoch);
        Assert.Equal(1, await HeldEpochAsync("p1", "lazy"));

        // p2 and p3 open it: each fetches the key to do so, and nothing is refused.
        foreach (var pne in new[] { "p2", "p3" })
            await AwaitAssertAsync(async () =>
            {
                var item = Assert.Single((await Pnes[pne].Ask<ReceivedContent>(new GetReceivedContent(pne), Timeout)).Items);
                Assert.Null(item.Error);
                Assert.Equal("first", Encoding.UTF8.GetString(item.Plaintext!.Span));
            }, Timeout);
        Assert.Equal(1, await HeldEpochAsync("p3", "lazy"));
        static bool PneStep8(FlowStep s) => s is { GroupId: "lazy", Epoch: 1, Step: 8, Leg: FlowLeg.GatewayToPne };
        var steps = await flow.UntilAsync(all => all.Count(PneStep8) >= 3, Timeout);
        Assert.Equal(["pne-p1/cskmf", "pne-p2/cskmf", "pne-p3/cskmf"], steps.Where(PneStep8).Select(s => s.From).Order());

        // A new epoch (p3 leaves): p1 holds epoch 1 until it needs epoch 2, then fetches that one once.
        Server.Smf.Tell(new LocalRequest(new RemoveMember("lazy", "p1", "p3")), TestActor);
        Assert.Equal(2, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitNoticedAsync("p1", "lazy", 2);
        Assert.Equal(1, await HeldEpochAsync("p1", "lazy"));
        Assert.Equal(2, Assert.IsType<ContentAccepted>(await Pnes["p1"].Ask<object>(
            new SendContent("d-2", "s-chat", "lazy", Octets.Own("second"u8.ToArray())), Timeout)).Epoch);
        Assert.Equal(2, await HeldEpochAsync("p1", "lazy"));
    }
}
