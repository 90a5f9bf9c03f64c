using Cpns.Actors.Local;
using System.Security.Cryptography;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// The logical key hierarchy in the live key flows: a push group that reaches more PN GWs than the threshold (3 here)
/// is keyed through the server CSKMF's tree, whose leaves are the PN GWs. The tree is built once (every PN GW gets its
/// path with a key wrapped for it alone); after that each membership change is one broadcast, signed once, that every
/// PN GW in the tree follows to the new key, and that a PN GW which left cannot open.
/// </summary>
public sealed class LkhDeliveryTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.keys.lkh-threshold = 3
    cpns.keys.push-timeout = 500ms
    """)
{
    private static readonly string[] GatewayIds = ["g1", "g2", "g3", "g4", "g5", "g6", "g7"];

    private static string PneOf(string gatewayId) => "p" + gatewayId[1..];

    private Task StartAsync() => StartNetworkAsync(GatewayIds, GatewayIds.ToDictionary(PneOf, g => g));

    private async Task<long> ChangeAsync(ICpnsMessage command)
    {
        Server.Smf.Tell(new LocalRequest(command), TestActor);
        return (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch;
    }

    private async Task AwaitEpochAsync(long epoch, IEnumerable<string> holders)
    {
        foreach (var holder in holders)
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Entity(holder), "big")).CurrentEpoch), Timeout);
    }

    private Task<KeyDeliveryStats> StatsAsync() => Server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, Timeout);

    private Task<LkhState> TreeAsync() => Server.Cskmf.Ask<LkhState>(new GetLkhState("big"), Timeout);

    private Task<IActorRef> CskmfOfAsync(string gatewayId) => Sys.ActorSelection($"/user/gateway-{gatewayId}/cskmf").ResolveOne(Timeout);

    private async Task<long> CounterAsync(string gatewayId, string reason) =>
        (await (await CskmfOfAsync(gatewayId)).Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections
        .GetValueOrDefault(reason);

    /// <summary>
    /// The PN GW holds exactly its path in the server's tree — its leaf and every ancestor, key for key — and nothing
    /// else (an export of anything more would not open as a path).
    /// </summary>
    private async Task AssertHoldsItsPathAsync(string gatewayId)
    {
        var (serverPath, serverKeys) = await ExportedPathAsync(Server.Cskmf, "big", gatewayId);
        var (heldPath, heldKeys) = await ExportedPathAsync(await CskmfOfAsync(gatewayId), "big", gatewayId);
        Assert.Equal((serverPath.TreeEpoch, serverPath.Position, serverPath.Size), (heldPath.TreeEpoch, heldPath.Position, heldPath.Size));
        Assert.Equal(serverKeys.Select(k => k.Node), heldKeys.Select(k => k.Node));
        Assert.Equal(serverKeys.Select(k => Convert.ToHexString(k.Key)), heldKeys.Select(k => Convert.ToHexString(k.Key)));
    }

    private async Task AssertMembersHoldTheServersKeyAsync(long epoch, IEnumerable<string> members)
    {
        var serverKey = await ExportedKeyAsync(Server.Cskmf, "big", epoch);
        foreach (var member in members)
            Assert.Equal(serverKey, await ExportedKeyAsync(Entity(member), "big", epoch));
    }

    private static IEnumerable<string> PneMembers(params string[] gateways) => gateways.Select(PneOf);

    private static int Bound(int n) => 2 * (int)Math.Ceiling(Math.Log2(n)) + 2;

    [Fact]
    public async Task The_tree_is_built_once_with_a_path_for_each_PN_GW_and_each_holds_exactly_its_path()
    {
        await StartAsync();
        var flow = new FlowRecorder(this);
        Assert.Equal(1, await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3", "g4", "g5").ToList())));
        await AwaitEpochAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5"));

        // Five PN GWs, more than the threshold: a tree with them at leaves 5 … 9, each told its path with its own key.
        var tree = await TreeAsync();
        Assert.Equal((1L, 5), (tree.TreeEpoch, tree.Members));
        Assert.Equal(new Dictionary<string, int> { ["g1"] = 5, ["g2"] = 6, ["g3"] = 7, ["g4"] = 8, ["g5"] = 9 }, tree.Positions);
        Assert.Null(tree.CurrentRekey);
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));
        var stats = await StatsAsync();
        Assert.Equal((1, 5L, 5L, 0L), (stats.LkhGroups, stats.FlatDeliveries, stats.PathsSent, stats.Broadcasts));
        var pushes = flow.Steps.Where(s => s is { Step: 8, Leg: FlowLeg.ServerToGateway, Epoch: 1 }).ToList();
        Assert.All(pushes, s => Assert.Equal("server/cskmf", s.From));
        Assert.Equal(new[] { "g1", "g2", "g3", "g4", "g5" }.Select(g => $"gateway-{g}/cskmf"), pushes.Select(s => s.To).Order());

        foreach (var gateway in new[] { "g1", "g2", "g3", "g4", "g5" })
            await AssertHoldsItsPathAsync(gateway);
        await AssertMembersHoldTheServersKeyAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5"));
    }

    [Fact]
    public async Task A_join_is_one_broadcast_signed_once_that_the_PN_GWs_in_the_tree_follow_the_newcomer_gets_its_path_alone_and_reads_nothing_from_before()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3", "g4", "g5").ToList()));
        await AwaitEpochAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5"));
        var beforeJoin = Assert.IsType<GroupCiphertext>(await Pnes["p1"].Ask<object>(
            new EncryptContent("big", Octets.Own("epoch one"u8.ToArray())), Timeout));
        var flow = new FlowRecorder(this);

        Assert.Equal(2, await ChangeAsync(new AddMember("big", "p1", "p6")));
        await AwaitEpochAsync(2, PneMembers("g1", "g2", "g3", "g4", "g5", "g6"));

        // g1's leaf (5) became internal: g1 moved to 10, the newcomer g6 took 11; node 5 and its ancestors 2 and 1 are new,
        // each wrapped under both children: 6 wraps, within 2·⌈log2 6⌉ + 2.
        var rekey = (await TreeAsync()).CurrentRekey;
        Assert.NotNull(rekey);
        Assert.Equal((2L, 1L, 2L), (rekey.Epoch, rekey.BaseTreeEpoch, rekey.TreeEpoch));
        var step = Assert.Single(rekey.Steps);
        Assert.Equal([new LkhMove("g1", 10), new LkhMove("g6", 11)], step.Moves);
        Assert.Equal([(5, 10), (5, 11), (2, 4), (2, 5), (1, 2), (1, 3)], step.Wraps().Select(w => (w.Node, w.Under)));
        Assert.InRange(step.WrapCount, 1, Bound(6));

        // One broadcast, sealed once, sent to the five PN GWs that were in the tree. The newcomer holds no leaf yet (leaf
        // keys are random, not derived from a long-term key): it gets the key wrapped for it alone, with its path.
        var stats = await StatsAsync();
        Assert.Equal((6L, 6L, 1L, 5L), (stats.FlatDeliveries, stats.PathsSent, stats.Broadcasts, stats.BroadcastCopies));
        Assert.InRange(stats.BroadcastBytes, 1, 4096);
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));
        var pushes = flow.Steps.Where(s => s is { Step: 8, Leg: FlowLeg.ServerToGateway, Epoch: 2 }).ToList();
        Assert.Equal(new[] { "g1", "g2", "g3", "g4", "g5", "g6" }.Select(g => $"gateway-{g}/cskmf"), pushes.Select(s => s.To).Order());
        Assert.DoesNotContain(flow.Steps, s => s is { Step: 9 or 10, Epoch: 2 });

        foreach (var gateway in new[] { "g1", "g2", "g3", "g4", "g5", "g6" })
        {
            await AssertHoldsItsPathAsync(gateway);
            Assert.Equal(0, await CounterAsync(gateway, "RekeyNotFollowed"));
        }

        await AssertMembersHoldTheServersKeyAsync(2, PneMembers("g1", "g2", "g3", "g4", "g5", "g6"));

        // Backward secrecy: the newcomer and its PN GW hold epoch 2 only; the content of epoch 1 stays closed to them.
        Assert.Equal([2L], (await KeyStateAsync(Gateways["g6"], "big")).Epochs);
        Assert.Equal([2L], (await KeyStateAsync(Pnes["p6"], "big")).Epochs);
        Assert.Equal(KeyError.UnknownEpoch,
            Assert.IsType<ContentRefused>(await Pnes["p6"].Ask<object>(new DecryptContent(beforeJoin), Timeout)).Error);
        Assert.IsType<ContentDecrypted>(await Pnes["p2"].Ask<object>(new DecryptContent(beforeJoin), Timeout));
    }

    [Fact]
    public async Task A_PN_GW_that_left_cannot_open_the_next_rekey_even_with_every_key_it_held()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3", "g4", "g5", "g6").ToList()));
        await AwaitEpochAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5", "g6"));
        var (heldPath, heldKeys) = await ExportedPathAsync(await CskmfOfAsync("g2"), "big", "g2");
        var flow = new FlowRecorder(this);

        Assert.Equal(2, await ChangeAsync(new RemoveMember("big", "p1", "p2")));
        var remaining = new[] { "g1", "g3", "g4", "g5", "g6" };
        await AwaitEpochAsync(2, PneMembers(remaining));
        await AssertMembersHoldTheServersKeyAsync(2, PneMembers(remaining));
        foreach (var gateway in remaining)
            await AssertHoldsItsPathAsync(gateway);

        // The broadcast went to the five PN GWs left, not to g2 (nor any key for it); g2 and p2 dropped the group.
        var stats = await StatsAsync();
        Assert.Equal((6L, 1L, 5L), (stats.FlatDeliveries, stats.Broadcasts, stats.BroadcastCopies));
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(remaining.Select(g => $"gateway-{g}/cskmf"),
            flow.Steps.Where(s => s is { Step: 8, Leg: FlowLeg.ServerToGateway, Epoch: 2 }).Select(s => s.To).Order());
        Assert.Null((await KeyStateAsync(Gateways["g2"], "big")).CurrentEpoch);
        Assert.DoesNotContain(2L, (await KeyStateAsync(Pnes["p2"], "big")).Epochs);

        // Forward secrecy, byte for byte: with every key g2 held (its leaf and ancestors as of epoch 1), no wrap of the
        // rekey and not the new group key opens; a member holding them cannot follow it.
        var rekey = (await TreeAsync()).CurrentRekey!;
        Assert.Equal(1, rekey.BaseTreeEpoch);
        foreach (var wrap in rekey.Steps.SelectMany(s => s.Wraps()))
            foreach (var (_, key) in heldKeys)
                Assert.Null(Aead.Open(key, wrap.Ciphertext, LkhCrypto.WrapContext("big", 2, wrap.Node, wrap.Under)));
        foreach (var (_, key) in heldKeys)
            Assert.Null(GroupKey.Unwrap(key, rekey.KeyUnderRoot, "big", 2, LkhCrypto.RootRecipient));
        var former = new LkhMember("big", "g2");
        former.Refresh(heldPath.TreeEpoch, heldPath.Position, heldPath.Size, heldKeys);
        Assert.False(former.Follow(rekey.BaseTreeEpoch, rekey.TreeEpoch, rekey.Steps));

        // Handed the broadcast itself (signed by the server), g2's CSKMF cannot follow it either: counted, nothing installed.
        (await CskmfOfAsync("g2")).Tell(SealAs(Secrets.Identity, rekey), ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(1, await CounterAsync("g2", "RekeyNotFollowed")), Timeout);
        Assert.Null((await KeyStateAsync(Gateways["g2"], "big")).CurrentEpoch);
    }

    [Fact]
    public async Task A_PN_GW_that_lost_its_path_pulls_once_gets_its_path_back_and_follows_the_next_broadcast()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3", "g4", "g5").ToList()));
        await AwaitEpochAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5"));

        // g3 loses what it held of the group (as a PN GW that missed a rekey would be out of step with the tree).
        (await CskmfOfAsync("g3")).Tell(new DropGroupKeys("big", 1, Revoked: false));
        await AwaitAssertAsync(async () => Assert.Null((await KeyStateAsync(Gateways["g3"], "big")).CurrentEpoch), Timeout);
        var flow = new FlowRecorder(this);

        Assert.Equal(2, await ChangeAsync(new AddMember("big", "p1", "p6")));
        await AwaitEpochAsync(2, ["g3", .. PneMembers("g1", "g2", "g3", "g4", "g5", "g6")]);
        Assert.Equal(1, await CounterAsync("g3", "RekeyNotFollowed"));
        await AssertHoldsItsPathAsync("g3");
        // It pulled epoch 2 (steps 9 and 10 between its SECA and the server CSKMF), and got its path with it.
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));
        Assert.Contains(flow.Steps, s => s is { Step: 9, Epoch: 2, From: "gateway-g3/cskmf/seca", To: "server/cskmf" });
        Assert.Contains(flow.Steps, s => s is { Step: 10, Epoch: 2, From: "server/cskmf", To: "gateway-g3/cskmf/seca" });
        var stats = await StatsAsync();
        Assert.Equal((7L, 7L, 1L), (stats.FlatDeliveries, stats.PathsSent, stats.Broadcasts)); // g6 joined, g3 pulled

        // The next change is followed by everyone, g3 included: no further key for one PN GW alone.
        Assert.Equal(3, await ChangeAsync(new RemoveMember("big", "p1", "p4")));
        var remaining = new[] { "g1", "g2", "g3", "g5", "g6" };
        await AwaitEpochAsync(3, PneMembers(remaining));
        stats = await StatsAsync();
        Assert.Equal((7L, 2L, 10L), (stats.FlatDeliveries, stats.Broadcasts, stats.BroadcastCopies));
        Assert.Equal(1, await CounterAsync("g3", "RekeyNotFollowed"));
        await AssertMembersHoldTheServersKeyAsync(3, PneMembers(remaining));
    }

    [Fact]
    public async Task A_rekey_that_does_not_open_or_is_not_vouched_for_is_counted_and_changes_nothing()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3", "g4", "g5").ToList()));
        await ChangeAsync(new AddMember("big", "p1", "p6"));
        await AwaitEpochAsync(2, PneMembers("g1", "g2", "g3", "g4", "g5", "g6"));
        var real = (await TreeAsync()).CurrentRekey!;
        var g1 = await CskmfOfAsync("g1");

        // A later epoch from g1's tree whose wraps are garbage, signed by the server: it does not open; g1 keeps its keys.
        var garbage = real.Steps.Select(s => s with
        {
            Epoch = 50,
            PackedWraps = LkhRekey.Pack(s.Wraps().Select(w => w with
            {
                Ciphertext = Octets.Own(RandomNumberGenerator.GetBytes(w.Ciphertext.Length)),
            }).ToList()),
        }).ToList();
        var announcement = EpochAnnouncement.Sign(Secrets.Identity, "big", 50, real.KeyCheck);
        g1.Tell(SealAs(Secrets.Identity, real with
        {
            Epoch = 50,
            BaseTreeEpoch = 2,
            TreeEpoch = 50,
            Steps = garbage,
            Announcement = announcement,
        }), ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(1, await CounterAsync("g1", "RekeyNotFollowed")), Timeout);

        // One whose epoch announcement is not the key manager's: refused before anything is tried.
        var impostor = EntityIdentity.Generate(Secrets.Identity.DeviceId, EntityKind.Server);
        g1.Tell(SealAs(Secrets.Identity, real with
        {
            Epoch = 51,
            Announcement = EpochAnnouncement.Sign(impostor, "big", 51, real.KeyCheck),
        }), ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(1, await CounterAsync("g1", "RekeyNotVouched")), Timeout);

        // A replay of the real one: the envelope guard refuses it.
        var replayed = SealAs(Secrets.Identity, real);
        g1.Tell(replayed, ActorRefs.NoSender);
        g1.Tell(replayed, ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(1, await CounterAsync("g1", nameof(EnvelopeRejection.Replayed))), Timeout);

        var held = await KeyStateAsync(g1, "big");
        Assert.Equal(2L, held.CurrentEpoch);
        Assert.Equal([1L, 2L], held.Epochs);
        await AssertHoldsItsPathAsync("g1");

        // And the next real change is followed as if nothing had happened.
        Assert.Equal(3, await ChangeAsync(new AddMember("big", "p1", "p7")));
        await AwaitEpochAsync(3, PneMembers("g1", "g2", "g3", "g4", "g5", "g6", "g7"));
        await AssertHoldsItsPathAsync("g1");
        Assert.Equal(1, await CounterAsync("g1", "RekeyNotFollowed"));
        Assert.Equal(7, (await StatsAsync()).FlatDeliveries); // the five of the tree's building, and one per newcomer
    }

    [Fact]
    public async Task Pull_groups_and_push_groups_within_the_threshold_are_keyed_per_PN_GW()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("big", "p1", DeliveryMode.Pull, PneMembers("g1", "g2", "g3", "g4", "g5").ToList()));
        await ChangeAsync(new CreateGroup("small", "p1", DeliveryMode.Push, PneMembers("g1", "g2", "g3").ToList()));
        await AwaitEpochAsync(1, PneMembers("g1", "g2", "g3", "g4", "g5"));
        Assert.Equal(0, (await TreeAsync()).Members);
        Assert.Equal(0, (await Server.Cskmf.Ask<LkhState>(new GetLkhState("small"), Timeout)).Members);
        var stats = await StatsAsync();
        Assert.Equal((0, 0L, 0L), (stats.LkhGroups, stats.PathsSent, stats.Broadcasts));
    }
}
