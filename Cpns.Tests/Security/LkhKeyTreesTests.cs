using Cpns.Actors.Server;
using Cpns.Actors;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Akka.Actor;
using FsCheck.Xunit;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>
/// The server CSKMF's trees (<see cref="LkhKeyTrees"/>) as the live flows use them: PN GWs with real X25519 pairwise keys
/// as leaves, whole target lists per epoch (several joins and leaves at once, big changes that rebuild the tree, a group
/// that falls below half the threshold), followed by members that only see what goes on the wire.
/// </summary>
public sealed class LkhKeyTreesTests
{
    private const string Group = "big";
    private const int Threshold = 4;
    private static readonly EntityIdentity Manager = EntityIdentity.Generate("cpns-server", EntityKind.Server);
    private static readonly EntityIdentity[] Gateways =
        Enumerable.Range(0, 40).Select(i => EntityIdentity.Generate($"g{i:D2}", EntityKind.PnGateway)).ToArray();

    private static KeyDeliveryTarget Target(EntityIdentity gateway) =>
        new(gateway.DeviceId, ActorRefs.Nobody, gateway.PublicKeys.Agreement, SecurityLevel.High, []);

    /// <summary>What each PN GW opens what the key manager sealed for it with.</summary>
    private static readonly Dictionary<string, PairwiseKeys> GatewayPairwise = Gateways.ToDictionary(g => g.DeviceId,
        g => new PairwiseKeys(g));

    /// <summary>A member's path as the key manager would send it, opened by that member.</summary>
    private static (LkhPath Path, IReadOnlyList<(int Node, byte[] Key)> Keys)? OpenedPath(LkhKeyTrees trees, EntityIdentity gateway,
        PairwiseKeys managerPairwise)
    {
        var path = trees.PathFor(Group, gateway.DeviceId, managerPairwise, gateway.DeviceId, gateway.PublicKeys.Agreement);
        return path is null
            ? null
            : (path, path.Open(GatewayPairwise[gateway.DeviceId], Manager.DeviceId, Manager.PublicKeys.Agreement, Group)!);
    }

    private static string PathText(LkhKeyTrees trees, EntityIdentity gateway, PairwiseKeys managerPairwise)
    {
        if (OpenedPath(trees, gateway, managerPairwise) is not { } opened)
            return "none";
        var (path, keys) = opened;
        return $"{path.TreeEpoch}@{path.Position}/{path.Size}:" + string.Join(",", keys.Select(k => $"{k.Node}={Convert.ToHexString(k.Key)}"));
    }

    [Property(MaxTest = 40)]
    public void Every_leaf_follows_every_epoch_to_its_key_no_PN_GW_that_left_can_and_the_journal_rebuilds_the_tree_exactly(int[] script)
    {
        var kek = KeyEncryptionKey.Generate();
        var managerPairwise = new PairwiseKeys(Manager);
        var trees = new LkhKeyTrees(kek, Threshold);
        var replica = new LkhKeyTrees(kek, Threshold); // what recovery rebuilds from the journal (and snapshots)
        var members = Gateways.ToDictionary(g => g.DeviceId, g => new LkhMember(Group, g.DeviceId));
        var current = new SortedSet<string>(Gateways.Take(6).Select(g => g.DeviceId), StringComparer.Ordinal);
        var random = new Random(script.Length);
        long epoch = 0;

        foreach (var step in script.Take(30))
        {
            // A change of the target list: a few PN GWs join or leave, now and then many at once.
            var count = Math.Abs(step % 7) == 6 ? 20 : 1 + Math.Abs(step % 3);
            for (var i = 0; i < count; i++)
            {
                var id = Gateways[random.Next(Gateways.Length)].DeviceId;
                if (step % 2 == 0 || current.Count <= 1)
                    current.Add(id);
                else
                    current.Remove(id);
            }

            epoch++;
            var sizeBefore = trees.State(Group).Members;
            var key = GroupKey.Generate(Group, epoch);
            var targets = Gateways.Where(g => current.Contains(g.DeviceId)).Select(Target).ToList();
            var record = trees.Advance(Group, epoch, key, targets);
            Assert.True(replica.Apply(Group, record));
            if (step % 5 == 0)
            {
                replica = new LkhKeyTrees(kek, Threshold);
                replica.Restore(trees.Snapshot());
            }

            if (record is null)
            {
                Assert.True(current.Count <= Threshold, $"{current.Count} PN GWs keyed per PN GW");
                Assert.False(trees.Has(Group));
                continue;
            }

            Assert.Equal(current.ToList(), trees.State(Group).Positions.Keys.Order(StringComparer.Ordinal).ToList());
            foreach (var gateway in Gateways)
                Assert.Equal(PathText(trees, gateway, managerPairwise), PathText(replica, gateway, managerPairwise));

            var n = Math.Max(sizeBefore, current.Count) + 1;
            foreach (var rekey in record.Steps)
                Assert.InRange(rekey.WrapCount, 0, 2 * (int)Math.Ceiling(Math.Log2(n)) + 2);

            foreach (var gateway in Gateways)
            {
                var member = members[gateway.DeviceId];
                bool OpensKey(byte[] root) =>
                    GroupKey.Unwrap(root, record.KeyUnderRoot, Group, epoch, LkhCrypto.RootRecipient)?.KeyCheck == key.KeyCheck;

                var joined = record.Joined.Any(j => j.MemberId == gateway.DeviceId);
                if (joined)
                {
                    // A tree just built, or one this PN GW joined: it holds no leaf yet, so the broadcast does not
                    // open for it, and it gets its path with a key wrapped for it alone.
                    var trial = new LkhMember(Group, gateway.DeviceId);
                    Assert.False(!record.Rebuilt && trial.Follow(record.BaseTreeEpoch, record.TreeEpoch, record.Steps, OpensKey));
                    var (path, keys) = OpenedPath(trees, gateway, managerPairwise)!.Value;
                    member.Refresh(path.TreeEpoch, path.Position, path.Size, keys);
                    Assert.True(OpensKey(member.RootKey!));
                    continue;
                }

                var followed = !record.Rebuilt && member.Follow(record.BaseTreeEpoch, record.TreeEpoch, record.Steps, OpensKey);
                if (current.Contains(gateway.DeviceId))
                    Assert.True(followed, $"{gateway.DeviceId} could not follow epoch {epoch}");
                else
                    Assert.False(followed, $"{gateway.DeviceId}, not a leaf, followed epoch {epoch}");
            }

            key.Dispose();
        }
    }

    [Fact]
    public void A_group_enters_LKH_above_the_threshold_and_leaves_it_only_below_half_of_it()
    {
        var trees = new LkhKeyTrees(KeyEncryptionKey.Generate(), threshold: 8);
        LkhEpochRecord? At(long epoch, int gateways) =>
            trees.Advance(Group, epoch, GroupKey.Generate(Group, epoch), Gateways.Take(gateways).Select(Target).ToList());

        Assert.Null(At(1, 8));
        Assert.True(At(2, 9)!.Rebuilt);
        var shrunk = At(3, 5)!; // 5 > 8 / 2: still a tree, four leaves left in one epoch
        Assert.Equal((false, 4, 0), (shrunk.Rebuilt, shrunk.Left.Count, shrunk.Joined.Count));
        Assert.Equal(5, trees.State(Group).Members);
        Assert.Null(At(4, 4));
        Assert.False(trees.Has(Group));
        Assert.Null(At(5, 8));
    }

    [Fact]
    public void More_changes_than_a_broadcast_should_carry_rebuild_the_tree()
    {
        var trees = new LkhKeyTrees(KeyEncryptionKey.Generate(), threshold: 2);
        LkhEpochRecord At(long epoch, IEnumerable<EntityIdentity> gateways) =>
            trees.Advance(Group, epoch, GroupKey.Generate(Group, epoch), gateways.Select(Target).ToList())!;

        Assert.True(At(1, Gateways.Take(10)).Rebuilt);
        var small = At(2, Gateways.Take(12));
        Assert.Equal((false, 2, 2), (small.Rebuilt, small.Joined.Count, small.Steps.Count));
        var big = At(3, Gateways.Take(12 + LkhKeyTrees.MaxIncrementalChanges + 1));
        Assert.Equal((true, 0L, 3L), (big.Rebuilt, big.BaseTreeEpoch, big.TreeEpoch));
        Assert.Empty(big.Steps);
    }

    [Fact]
    public void A_record_that_does_not_follow_from_the_tree_held_drops_it_and_a_record_sealed_under_another_KEK_is_refused()
    {
        var kek = KeyEncryptionKey.Generate();
        var trees = new LkhKeyTrees(kek, threshold: 2);
        var built = trees.Advance(Group, 1, GroupKey.Generate(Group, 1), Gateways.Take(5).Select(Target).ToList())!;
        var joined = trees.Advance(Group, 2, GroupKey.Generate(Group, 2), Gateways.Take(6).Select(Target).ToList())!;

        var gap = new LkhKeyTrees(kek, threshold: 2);
        Assert.False(gap.Apply(Group, joined)); // epoch 1 is missing: its base is not held
        Assert.False(gap.Has(Group));

        var foreign = new LkhKeyTrees(KeyEncryptionKey.Generate(), threshold: 2);
        Assert.False(foreign.Apply(Group, built));
        Assert.False(foreign.Has(Group));

        var replica = new LkhKeyTrees(kek, threshold: 2);
        Assert.True(replica.Apply(Group, built));
        Assert.True(replica.Apply(Group, joined));
        Assert.Equal(trees.State(Group).Positions, replica.State(Group).Positions);
    }
}
