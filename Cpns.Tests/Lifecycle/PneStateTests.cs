using Akka.Actor;
using Cpns.Actors.Local;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>A PNE's two states: before it is registered each request of its applications gets its typed refusal; once registered they go out.</summary>
public sealed class PneStateTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    [Fact]
    public async Task An_unregistered_PNE_refuses_each_request_with_its_own_answer_and_scans_again_without_a_PN_GW()
    {
        var silentGateway = CreateTestProbe();
        var pne = Sys.ActorOf(PneEntity.Props(EntityIdentity.Generate("p1", EntityKind.Pne), Secrets.TrustAnchor, silentGateway.Ref, Settings));
        Assert.Equal("p1", (await silentGateway.ExpectMsgAsync<DiscoverGateways>(Timeout)).DeviceId); // its scan

        const string notYet = "p1 is not registered yet";
        pne.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(new GroupRejected("grp", GroupError.NotAuthorized, notYet), await ExpectMsgAsync<GroupRejected>(Timeout));
        pne.Tell(new LocalRequest(new SubscribeStatus("p1", "p2")), TestActor);
        Assert.Equal(new WatchRejected("p1", "p2", GroupError.NotAuthorized, notYet), await ExpectMsgAsync<WatchRejected>(Timeout));
        pne.Tell(new LocalRequest(new DmAlert("p1", "battery", "./DevInfo/Bat", "5", RequestId: 7)), TestActor);
        Assert.Equal(new DmAlertAnswer("p1", 0, false, notYet, 7), await ExpectMsgAsync<DmAlertAnswer>(Timeout));
        pne.Tell(new LocalRequest(new SearchServices("p1", ["music"], new Dictionary<string, string>(), 0, 10, RequestId: 3)), TestActor);
        Assert.Equal(new SearchRejected("p1", DirectoryError.NotAuthorized, notYet, 3), await ExpectMsgAsync<SearchRejected>(Timeout));
        pne.Tell(new DeregisterDevice("p1"), TestActor);
        Assert.Equal(new RegistrationEnded("p1", DeregistrationReason.Deregistered), await ExpectMsgAsync<RegistrationEnded>(Timeout));
        pne.Tell(new MoveToGateway("p1", silentGateway.Ref), TestActor);
        Assert.False((await ExpectMsgAsync<BridgeAnswer>(Timeout)).Accepted);
        Assert.False((await pne.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).Registered);

        // No PN GW answered: the retry scans again.
        Assert.Equal("p1", (await silentGateway.ExpectMsgAsync<DiscoverGateways>(Timeout)).DeviceId);
    }

    [Fact]
    public async Task A_registered_PNE_sends_its_requests_and_after_deregistering_refuses_them_again()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        var pne = Pnes["p1"];

        pne.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);

        pne.Tell(new DeregisterDevice("p1"), TestActor);
        Assert.Equal(new RegistrationEnded("p1", DeregistrationReason.Deregistered), await ExpectMsgAsync<RegistrationEnded>(Timeout));
        pne.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        Assert.Equal(new GroupRejected("grp", GroupError.NotAuthorized, "p1 is not registered yet"), await ExpectMsgAsync<GroupRejected>(Timeout));
    }
}
