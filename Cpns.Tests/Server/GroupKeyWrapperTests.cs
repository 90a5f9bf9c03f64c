using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Server;

/// <summary>
/// The child that does one group's public-key work at the server's CSKMF: each order comes back as a delivery only its
/// PN GW opens, to the epoch's key, with the path its tree gave it; the copied path keys are zeroed once sealed.
/// </summary>
public sealed class GroupKeyWrapperTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private const string Group = "grp";
    private static readonly EntityIdentity ServerIdentity = EntityIdentity.Generate("cpns-server", EntityKind.Server);
    private static readonly EntityIdentity[] GatewayIdentities =
        Enumerable.Range(1, 3).Select(i => EntityIdentity.Generate($"g{i}", EntityKind.PnGateway)).ToArray();

    private static KeyDeliveryTarget Target(EntityIdentity gateway) =>
        new(gateway.DeviceId, ActorRefs.Nobody, gateway.PublicKeys.Agreement, SecurityLevel.High, [$"{gateway.DeviceId}-pne"]);

    [Fact]
    public async Task Each_order_comes_back_wrapped_for_its_PN_GW_alone_with_its_path_and_the_copied_path_keys_are_zeroed()
    {
        var kek = KeyEncryptionKey.Generate();
        var serverPairwise = new PairwiseKeys(ServerIdentity);
        var trees = new LkhKeyTrees(kek, threshold: 2);
        using var key = GroupKey.Generate(Group, 1);
        var targets = GatewayIdentities.Select(Target).ToList();
        var lkh = trees.Advance(Group, 1, key, targets);
        Assert.NotNull(lkh);
        var issued = new GroupEpochIssuedEvent(Group, 1, DeliveryMode.Push, SecurityLevel.Low, kek.Wrap(key), key.KeyCheck,
            EpochAnnouncement.Sign(ServerIdentity, Group, 1, key.KeyCheck), targets, 0, lkh);
        var pathKeys = trees.PathKeysFor(Group, "g1")!;
        var copiedKeys = pathKeys.Keys.Select(k => k.Key).ToList();
        var job = new WrapGroupKey(issued, [
            new KeyWrapOrder(targets[0], TestActor, pathKeys, 8, FlowKind.Push),
            new KeyWrapOrder(targets[1], TestActor, null, 10, FlowKind.Pull),
        ]);

        Sys.ActorOf(GroupKeyWrapper.Props(kek, serverPairwise)).Tell(job, TestActor);
        var wrapped = await ExpectMsgAsync<GroupKeyWrapped>();

        Assert.Same(job, wrapped.Job);
        Assert.Equal(["g1", "g2"], wrapped.Deliveries.Select(d => d.RecipientId));
        for (var i = 0; i < 2; i++)
        {
            var delivery = wrapped.Deliveries[i];
            Assert.Equal((Group, 1L, DeliveryMode.Push, "cpns-server", key.KeyCheck), (delivery.GroupId, delivery.Epoch, delivery.Mode,
                delivery.WrapperId, delivery.KeyCheck));
            Assert.Equal([$"g{i + 1}-pne"], delivery.LocalMembers);
            using var opened = GroupKey.UnwrapFrom(new PairwiseKeys(GatewayIdentities[i]), ServerIdentity.DeviceId, ServerIdentity.PublicKeys.Agreement,
                delivery.WrappedKey, Group, 1);
            Assert.Equal(key.KeyCheck, opened?.KeyCheck);
            // Wrapped for that PN GW alone: another does not open it.
            Assert.Null(GroupKey.UnwrapFrom(new PairwiseKeys(GatewayIdentities[2]), ServerIdentity.DeviceId, ServerIdentity.PublicKeys.Agreement,
                delivery.WrappedKey, Group, 1));
        }

        var path = wrapped.Deliveries[0].Path!;
        var openedPath = path.Open(new PairwiseKeys(GatewayIdentities[0]), ServerIdentity.DeviceId, ServerIdentity.PublicKeys.Agreement, Group)!;
        var treePath = trees.PathFor(Group, "g1", serverPairwise, "g1", GatewayIdentities[0].PublicKeys.Agreement)!
            .Open(new PairwiseKeys(GatewayIdentities[0]), ServerIdentity.DeviceId, ServerIdentity.PublicKeys.Agreement, Group)!;
        Assert.Equal(treePath.Select(p => (p.Node, Convert.ToHexString(p.Key))), openedPath.Select(p => (p.Node, Convert.ToHexString(p.Key))));
        Assert.Null(wrapped.Deliveries[1].Path);
        Assert.All(copiedKeys, k => Assert.All(k, b => Assert.Equal(0, b)));
    }
}
