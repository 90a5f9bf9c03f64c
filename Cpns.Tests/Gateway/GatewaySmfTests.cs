using Akka.Actor;
using Cpns.Actors.Gateway;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Gateway;

/// <summary>A PN GW's SMF tells a PNE its membership ended only when the server removed it from the group.</summary>
public sealed class GatewaySmfTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    [Fact]
    public async Task A_member_that_moved_to_another_PN_GW_is_not_told_its_membership_ended_and_a_removed_one_is()
    {
        var gatewayIdentity = EntityIdentity.Generate("g1", EntityKind.PnGateway);
        var smf = Sys.ActorOf(GatewaySmf.Props(gatewayIdentity, CreateTestProbe().Ref, Settings), "smf-under-test");
        var server = Secrets.Identity;
        var nobody = ActorRefs.Nobody;
        smf.Tell(new ServerAttached(new ServerEndpoints(server.DeviceId, server.PublicKeys, nobody, nobody, nobody, nobody, nobody,
            nobody, nobody, nobody, nobody), new Credential(Octets.Empty), Secrets.TrustAnchor.Verifier()));
        var moving = (Identity: EntityIdentity.Generate("px", EntityKind.Pne), Smf: CreateTestProbe());
        var staying = (Identity: EntityIdentity.Generate("py", EntityKind.Pne), Smf: CreateTestProbe());
        foreach (var pne in new[] { moving, staying })
            smf.Tell(new PneAttached(pne.Identity.DeviceId, pne.Identity.PublicKeys, new PneEndpoints(nobody, pne.Smf.Ref, nobody)));

        void Notice(long epoch, string[] local, string[] removed) =>
            smf.Tell(SealAs(server, new GroupNotice("grp", epoch, DeliveryMode.Pull, NoticeKind.Updated, nobody, local, removed)));
        Notice(1, ["px", "py"], []);
        Notice(2, ["py"], []); // px is now reached through another PN GW: still a member
        Notice(3, ["px"], ["py"]); // py removed
        smf.Tell(SealAs(moving.Identity, new SyncGroups("px"))); // px asks what it is in: the answer follows anything sent before

        var ended = Unseal<MembershipEnded>(await staying.Smf.ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal(("grp", "py", 3L), (ended.GroupId, ended.DeviceId, ended.Epoch));
        var first = Unseal<ICpnsMessage>(await moving.Smf.ExpectMsgAsync<SignedEnvelope>(Timeout));
        var notice = Assert.IsType<GroupNotice>(first); // not a MembershipEnded for epoch 2
        Assert.Equal(3L, notice.Epoch);
        Assert.Equal(["px"], notice.LocalMembers);
    }
}
