using Cpns.Actors.Local;
using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Distributed;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Cluster;

/// <summary>
/// The distributed CPNS Server in one test process: this test kit's actor system is the <c>server</c> node, and
/// gateway nodes are further actor systems of the same name on free 127.0.0.1 ports, all on one journal (a SQLite
/// file). Each gateway node hosts one PN GW with two PNEs, and Group Key Managers. The LKH threshold is 1, so push
/// groups over both PN GWs are keyed through the registry's tree and rekeyed by broadcasts from their managers.
/// </summary>
public sealed class ClusterTests : CpnsTestKit
{
    private const string NodeSettings = """
        akka.actor.serialize-messages = off
        akka.cluster.split-brain-resolver.stable-after = 2s
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s
        akka.cluster.failure-detector.heartbeat-interval = 500ms
        akka.cluster.sharding.retry-interval = 500ms
        akka.cluster.sharding.handoff-timeout = 5s
        akka.remote.dot-netty.tcp.port = 0
        cpns.cluster.key-manager-retry = 500ms
        cpns.keys.push-timeout = 1s
        cpns.keys.lkh-threshold = 1
        """;

    private static readonly ThreadLocal<TempFolder> Folder = new(() => new TempFolder("cpns-cluster"));
    private readonly TempFolder _folder;
    private readonly Dictionary<string, ActorSystem> _nodes = new();
    private readonly ConcurrentQueue<GkmEpochAnnounced> _announcements = new();
    private readonly ConcurrentQueue<FlowStep> _steps = new();
    private IActorRef _keyManagers = ActorRefs.Nobody;
    /// <summary>What each gateway node holds: its own key manager, none of the server's secrets nor another node's.</summary>
    private readonly Dictionary<string, KeyManagerSecrets> _managerSecrets = new();

    public ClusterTests(ITestOutputHelper output) : base(output, NodeConfig("server", Folder.Value!.File("cluster.db")))
    {
        _folder = Folder.Value!;
        Folder.Value = new TempFolder("cpns-cluster");
    }

    private static Config NodeConfig(string role, string database, string extra = "") =>
        ConfigurationFactory.ParseString($"{extra}\nakka.cluster.roles = [{role}]\n{NodeSettings}")
            .WithFallback(ConfigurationFactory.ParseString(CpnsConfig.Text("cluster")))
            .WithFallback(Storage.Sqlite(database))
            .WithFallback(ClusterNodes.WithClusterDefaults(Akka.Configuration.Config.Empty));

    protected override void AfterAll()
    {
        foreach (var node in _nodes.Values)
            node.Terminate().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
        _folder.Dispose();
    }

    private string ServerAddress => Akka.Cluster.Cluster.Get(Sys).SelfAddress.ToString();

    private async Task StartServerNodeAsync()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        await cluster.JoinAsync(cluster.SelfAddress);
        _keyManagers = ClusterNodes.StartKeyManagerProxy(Sys, Settings);
        ClusterNodes.StartStatus(Sys, null);
        await StartServerAsync(ClusterNodes.KeyManagers(_keyManagers));
        Watch(Sys);
    }

    private void Watch(ActorSystem node)
    {
        node.ActorOf(Props.Create(() => new Collector(_announcements, _steps)));
    }

    /// <summary>A gateway node hosting PN GW <paramref name="gatewayId"/> with its PNEs.</summary>
    private async Task<ActorSystem> StartGatewayNodeAsync(string name, string gatewayId, string[] pnes, bool crashable = false)
    {
        var extra = crashable
            ? "akka.coordinated-shutdown.run-by-actor-system-terminate = off\nakka.cluster.run-coordinated-shutdown-when-down = off"
            : "";
        var node = ActorSystem.Create("cpns", Config(NodeConfig("gateway", _folder.File("cluster.db"), extra)));
        _nodes[name] = node;
        Watch(node);
        await Akka.Cluster.Cluster.Get(node).JoinAsync(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        _managerSecrets[name] = KeyManagerSecrets.Generate(Secrets, name, DateTimeOffset.UtcNow);
        await ClusterNodes.StartGatewayNodeAsync(node, ClusterNodes.StartKeyManagerRegion(node, _managerSecrets[name], Settings));
        var registry = await ClusterNodes.FindServerRegistryAsync(node, Timeout);

        var identity = EntityIdentity.Generate(gatewayId, EntityKind.PnGateway);
        Identities[gatewayId] = identity;
        Gateways[gatewayId] = Deployment.StartGateway(node, identity, Secrets.TrustAnchor, registry, Settings,
            enrolmentToken: EnrolmentTokenFor(gatewayId, EntityKind.PnGateway));
        await AwaitRegisteredAsync([Gateways[gatewayId]]);
        foreach (var pneId in pnes)
        {
            var pne = EntityIdentity.Generate(pneId, EntityKind.Pne);
            Identities[pneId] = pne;
            Pnes[pneId] = Deployment.StartPne(node, pne, Secrets.TrustAnchor, Gateways[gatewayId], Settings,
                enrolmentToken: EnrolmentTokenFor(pneId, EntityKind.Pne));
        }

        await AwaitRegisteredAsync(pnes.Select(p => Pnes[p]));
        return node;
    }

    private async Task StartClusterAsync()
    {
        await StartServerNodeAsync();
        await StartGatewayNodeAsync("node-a", "ga", ["a1", "a2"]);
        await StartGatewayNodeAsync("node-b", "gb", ["b1", "b2"], crashable: true);
    }

    private async Task<long> ChangeAsync(ICpnsMessage command) =>
        Assert.IsType<GroupAccepted>(await Server.Smf.Ask<object>(new LocalRequest(command), Timeout)).Epoch;

    private async Task AwaitEpochAsync(string groupId, long epoch, IEnumerable<string> members)
    {
        foreach (var member in members)
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes[member], groupId)).CurrentEpoch),
                Dilated(TimeSpan.FromSeconds(30)));
    }

    private async Task<GkmState> ManagerOfAsync(string groupId) =>
        await _keyManagers.Ask<GkmState>(new GetGkmState(groupId), Timeout);

    private string NodeNamed(string address) => _nodes.Single(kv => Akka.Cluster.Cluster.Get(kv.Value).SelfAddress.ToString() == address).Key;

    /// <summary>No two Group Key Managers ever announced one epoch of a group with different keys.</summary>
    private void AssertNoEpochAnnouncedWithTwoKeys()
    {
        foreach (var epoch in _announcements.GroupBy(a => (a.GroupId, a.Epoch)))
            Assert.Single(epoch.Select(a => a.KeyCheck).Distinct());
    }

    [Fact]
    public async Task Group_key_managers_run_on_gateway_nodes_and_push_and_pull_reach_every_member_on_every_node()
    {
        await StartClusterAsync();
        Assert.Equal(1, await ChangeAsync(new CreateGroup("live", "operator", DeliveryMode.Push, ["a1", "b1", "a2"])));
        Assert.Equal(1, await ChangeAsync(new CreateGroup("vod", "operator", DeliveryMode.Pull, ["a2", "b1", "b2"])));
        await AwaitEpochAsync("live", 1, ["a1", "b1", "a2"]);
        await AwaitEpochAsync("vod", 1, ["a2", "b1", "b2"]);

        var gatewayNodes = _nodes.Values.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.ToString()).ToList();
        foreach (var group in new[] { "live", "vod" })
        {
            var manager = await ManagerOfAsync(group);
            Assert.Contains(manager.Node, gatewayNodes);
            Assert.NotEqual(ServerAddress, manager.Node);
            Assert.Equal(1, manager.LastEpoch);
        }

        // The keys the members hold are the ones the managers made, registered at the server's CSKMF.
        var registry = await KeyStateAsync(Server.Cskmf, "live");
        Assert.Equal(registry.KeyCheck, Assert.Single(_announcements, a => a.GroupId == "live").KeyCheck);
        Assert.Equal(registry.KeyCheck, (await KeyStateAsync(Pnes["b1"], "live")).KeyCheck);

        // Push: step 8 came from the manager, on a gateway node, to both PN GWs; pull: step 10 from the server node.
        await AwaitAssertAsync(() =>
        {
            var pushes = _steps.Where(s => s is { GroupId: "live", Epoch: 1, Step: 8, Leg: FlowLeg.ServerToGateway }).ToList();
            Assert.Equal(2, pushes.Count);
            Assert.All(pushes, s => Assert.StartsWith("system/sharding/group-key-manager", s.From));
            Assert.Equal(["ga", "gb"], pushes.Select(s => s.To.Split('/')[0]["gateway-".Length..]).Order());
            var pulls = _steps.Where(s => s is { GroupId: "vod", Epoch: 1, Step: 10, Leg: FlowLeg.ServerToGateway }).ToList();
            // (a PN GW asks again if an answer is slow, so count the PN GWs served, not the answers)
            Assert.Equal(["ga", "gb"], pulls.Select(s => s.To.Split('/')[0]["gateway-".Length..]).Distinct().Order());
            Assert.All(pulls, s => Assert.Equal("server/cskmf", s.From));
            return Task.CompletedTask;
        }, Timeout);

        // A change: the next epoch, made by the same manager, reaches everyone — as one rekey broadcast of the tree the
        // registry built at epoch 1 (both PN GWs got their paths then), sent by the manager to both PN GWs.
        Assert.Equal(2, await ChangeAsync(new AddMember("live", "operator", "b2")));
        await AwaitEpochAsync("live", 2, ["a1", "a2", "b1", "b2"]);
        var stats = await Server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, Timeout);
        Assert.Equal((1, 2L, 1L, 2L), (stats.LkhGroups, stats.PathsSent, stats.Broadcasts, stats.BroadcastCopies));
        await AwaitAssertAsync(() =>
        {
            var rekeys = _steps.Where(s => s is { GroupId: "live", Epoch: 2, Step: 8, Leg: FlowLeg.ServerToGateway }).ToList();
            Assert.All(rekeys, s => Assert.StartsWith("system/sharding/group-key-manager", s.From));
            Assert.Equal(["ga", "gb"], rekeys.Select(s => s.To.Split('/')[0]["gateway-".Length..]).Order());
            return Task.CompletedTask;
        }, Timeout);
        foreach (var gateway in new[] { "ga", "gb" })
        {
            var counters = await (await _nodes[gateway == "ga" ? "node-a" : "node-b"].ActorSelection($"/user/gateway-{gateway}/cskmf")
                .ResolveOne(Timeout)).Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout);
            Assert.Equal(0, counters.Rejections.GetValueOrDefault("RekeyNotFollowed"));
        }

        // Between the nodes, over TLS, the server's functions and the PN GWs' talk in sessions once their traffic repeats.
        var established = 0L;
        foreach (var function in new[] { "connections", "smf", "cskmf" })
        foreach (var (gateway, node) in new[] { ("ga", "node-a"), ("gb", "node-b") })
            established += (await (await _nodes[node].ActorSelection($"/user/gateway-{gateway}/{function}").ResolveOne(Timeout))
                .Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Sessions.GetValueOrDefault("Established");
        Assert.True(established > 0, "no session was established across the nodes");

        // The server node's view of the membership converges by gossip: ask until it has seen every node Up.
        await AwaitAssertAsync(async () =>
        {
            var status = await Sys.ActorSelection("/user/" + ClusterNodes.StatusActorName).Ask<ClusterStatus>(GetClusterStatus.Instance, Timeout);
            Assert.Equal(3, status.Members.Count(m => m.Status == "Up"));
            Assert.Equal(["live", "vod"], status.Managers.Select(m => m.GroupId).Order());
            var live = Assert.Single(status.Groups, g => g.GroupId == "live");
            Assert.Equal((2L, 4, 0), (live.Epoch, live.Members, live.Pending.Count));
        }, Timeout);
        AssertNoEpochAnnouncedWithTwoKeys();

        // Only the KMC's KeyManager credentials for this server make a wrapper: a PN GW's credential under a manager's id,
        // or a manager credential from another root, is counted and nothing is installed.
        var impostor = EntityIdentity.Generate($"{Settings.ServerId}-gkm-evil", EntityKind.KeyManager);
        var now = DateTimeOffset.UtcNow;
        var forgedCredentials = new[]
        {
            Secrets.Authority.Issue(impostor.DeviceId, EntityKind.PnGateway, impostor.PublicKeys, now.AddMinutes(-1), TimeSpan.FromDays(1)),
            CredentialAuthority.Generate("other-kmc").Issue(impostor.DeviceId, EntityKind.KeyManager, impostor.PublicKeys, now.AddMinutes(-1),
                TimeSpan.FromDays(1)),
        };
        using var fake = GroupKey.Generate("live", 9);
        var gaCskmf = await _nodes["node-a"].ActorSelection("/user/gateway-ga/cskmf").ResolveOne(Timeout);
        foreach (var credential in forgedCredentials)
            gaCskmf.Tell(SealAs(impostor, new GroupKeyDelivery("live", 9, DeliveryMode.Push, impostor.DeviceId, "ga",
                fake.WrapFor(new PairwiseKeys(impostor), "ga", Identities["ga"].PublicKeys.Agreement), fake.KeyCheck, ["a1"],
                EpochAnnouncement.Sign(impostor, "live", 9, fake.KeyCheck)) { ManagerCredential = credential }), ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(2,
            (await gaCskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("ManagerNotVouched")),
            Timeout);
        Assert.Equal(2, (await KeyStateAsync(Gateways["ga"], "live")).CurrentEpoch);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task When_the_node_of_a_group_key_manager_goes_the_manager_carries_on_from_the_same_epoch_elsewhere(bool crash)
    {
        await StartClusterAsync();
        // Groups until one's manager is on node-b (the node this test stops); sharding places them by hash.
        string? groupId = null;
        for (var i = 0; i < 12 && groupId is null; i++)
        {
            var candidate = $"club-{i}";
            await ChangeAsync(new CreateGroup(candidate, "operator", DeliveryMode.Push, ["a1", "a2", "b1"]));
            await AwaitEpochAsync(candidate, 1, ["a1", "a2", "b1"]);
            if (NodeNamed((await ManagerOfAsync(candidate)).Node) == "node-b")
                groupId = candidate;
        }

        Assert.NotNull(groupId);
        Assert.Equal(2, await ChangeAsync(new AddMember(groupId, "operator", "b2")));
        await AwaitEpochAsync(groupId, 2, ["a1", "a2", "b1", "b2"]);

        var nodeB = _nodes["node-b"];
        var nodeBAddress = Akka.Cluster.Cluster.Get(nodeB).SelfAddress;
        if (crash)
            await nodeB.Terminate(); // no leaving: the cluster finds it unreachable and the split-brain resolver downs it
        else
            await CoordinatedShutdown.Get(nodeB).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
        _nodes.Remove("node-b");
        await AwaitAssertAsync(() =>
        {
            Assert.DoesNotContain(Akka.Cluster.Cluster.Get(Sys).State.Members, m => m.Address == nodeBAddress);
            return Task.CompletedTask;
        }, Dilated(TimeSpan.FromSeconds(40)));

        // Each node's manager has its own identity and KEK. The group's manager, now node-a's, cannot open epoch 2 (node-b's
        // made it): asked to push it, it declines, and the server, which holds every epoch, delivers it itself.
        Assert.NotEqual(_managerSecrets["node-a"].Identity.PublicKeys, _managerSecrets["node-b"].Identity.PublicKeys);
        // (Until the shard has moved, the proxy still routes to node-b and what it sends is lost: ask until node-a answers.)
        await AwaitAssertAsync(async () => Assert.Equal("node-a",
                NodeNamed((await _keyManagers.Ask<GkmState>(new GetGkmState(groupId), Dilated(TimeSpan.FromSeconds(3)))).Node)),
            Dilated(TimeSpan.FromSeconds(40)));
        Server.Cskmf.Tell(new DeliverGroupKey(groupId, 2, "ga"));
        await AwaitAssertAsync(() =>
        {
            Assert.Contains(_steps, s => s.GroupId == groupId && s is { Epoch: 2, Step: 8, From: "server/cskmf" } &&
                                         s.To.StartsWith("gateway-ga/", StringComparison.Ordinal));
            return Task.CompletedTask;
        }, Timeout);

        // The members behind node-b went with it; a change after the cluster settled makes the next epoch on node-a.
        Assert.Equal(3, await ChangeAsync(new RemoveMember(groupId, "operator", "b1")));
        Assert.Equal(4, await ChangeAsync(new RemoveMember(groupId, "operator", "b2")));
        await AwaitEpochAsync(groupId, 4, ["a1", "a2"]);
        var manager = await ManagerOfAsync(groupId);
        Assert.Equal("node-a", NodeNamed(manager.Node));
        Assert.Equal(4, manager.LastEpoch);
        Assert.Equal([1L, 2L, 3L, 4L], _announcements.Where(a => a.GroupId == groupId && a.Created).Select(a => a.Epoch).Order());
        AssertNoEpochAnnouncedWithTwoKeys();
    }

    /// <summary>Collects, on one node, what the managers announce and the flow steps.</summary>
    private sealed class Collector : ReceiveActor
    {
        public Collector(ConcurrentQueue<GkmEpochAnnounced> announcements, ConcurrentQueue<FlowStep> steps)
        {
            Context.System.EventStream.Subscribe(Self, typeof(GkmEpochAnnounced));
            Context.System.EventStream.Subscribe(Self, typeof(FlowStep));
            Receive<GkmEpochAnnounced>(announcements.Enqueue);
            Receive<FlowStep>(steps.Enqueue);
        }
    }
}
