using Akka.Actor;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// A PNE's pull of an epoch its PN GW does not hold yet waits at the PN GW for that key and is answered once it is
/// there, instead of being refused and asked again; one whose epoch does not come in time is told "not yet".
/// </summary>
public sealed class HeldPullTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.keys.pull-retry-max = 1s")
{
    private Task<IActorRef> GatewayCskmfAsync() => Sys.ActorSelection("/user/gateway-g1/cskmf").ResolveOne(Timeout);

    /// <summary>The CSKMF has taken everything sent to it before (its answer to a query comes after them).</summary>
    private Task HeardAsync(IActorRef cskmf) => KeyStateAsync(cskmf, "grp");

    [Fact]
    public async Task A_pull_of_an_epoch_on_its_way_is_answered_with_its_key_when_the_PN_GW_has_it()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        var cskmf = await GatewayCskmfAsync();
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(cskmf, "grp")).CurrentEpoch), Timeout);

        // p1 asks for epoch 2 before there is one: no answer yet.
        var pne = CreateTestProbe();
        cskmf.Tell(SealAs("p1", new GroupKeyRequest("grp", 2, "p1")), pne.Ref);
        await HeardAsync(cskmf);
        await pne.ExpectNoMsgAsync(TimeSpan.Zero);

        // Epoch 2 comes (p2 joins); the PN GW pulls it, and the waiting request gets it.
        Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        Assert.Equal(2, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        var delivery = Unseal<GroupKeyDelivery>(await pne.ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal(("grp", 2L, "p1", "g1"), (delivery.GroupId, delivery.Epoch, delivery.RecipientId, delivery.WrapperId));
        await HeardAsync(cskmf);
        await pne.ExpectNoMsgAsync(TimeSpan.Zero); // answered once
    }

    [Fact]
    public async Task A_pull_of_an_epoch_that_does_not_come_is_told_not_yet_after_the_wait()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        var cskmf = await GatewayCskmfAsync();
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(cskmf, "grp")).CurrentEpoch), Timeout);

        var pne = CreateTestProbe();
        cskmf.Tell(SealAs("p1", new GroupKeyRequest("grp", 7, "p1")), pne.Ref);
        await HeardAsync(cskmf);
        await pne.ExpectNoMsgAsync(TimeSpan.Zero); // held, not refused at once
        var refused = Unseal<GroupKeyRefused>(await pne.ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal(("grp", 7L, KeyError.NotYetAvailable), (refused.GroupId, refused.Epoch, refused.Error));
    }
}
