using Cpns.Actors.Local;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Persistence;

/// <summary>
/// The server's durable state survives a full stop: build state, terminate the actor system, start a new one on
/// the same database with the same server secrets, and everything is back — and the network carries on from it.
/// </summary>
public abstract class RecoveryTests : CpnsTestKit
{
    private const string Frequent =
        "cpns.persistence.snapshot-every = 3\ncpns.usage.report-interval = 200ms\ncpns.keys.lkh-threshold = 3";
    private readonly Config _storage;

    protected RecoveryTests(ITestOutputHelper output, Config storage)
        : base(output, ConfigurationFactory.ParseString(Frequent).WithFallback(storage))
    {
        _storage = ConfigurationFactory.ParseString(Frequent).WithFallback(storage);
    }

    private async Task<long> ChangeAsync(IActorRef smf, ICpnsMessage command)
    {
        var reply = await smf.Ask<object>(new LocalRequest(command), Timeout);
        return Assert.IsType<GroupAccepted>(reply).Epoch;
    }

    [Fact]
    public async Task Every_piece_of_state_is_back_after_a_restart_and_the_network_carries_on()
    {
        await StartNetworkAsync(["g1", "g2"],
            new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2", ["p4"] = "g2" });

        Assert.Equal(1, await ChangeAsync(Server.Smf, new CreateGroup("pushed", "p1", DeliveryMode.Push, ["p1", "p3"])));
        Assert.Equal(2, await ChangeAsync(Server.Smf, new AddMember("pushed", "p1", "p2")));
        Assert.Equal(3, await ChangeAsync(Server.Smf, new RemoveMember("pushed", "p1", "p3")));
        Assert.Equal(1, await ChangeAsync(Server.Smf, new CreateGroup("pulled", "p2", DeliveryMode.Pull, ["p2", "p4"],
            SecurityLevel.Medium)));
        Assert.Equal(2, await ChangeAsync(Server.Smf, new AddMember("pulled", "p2", "p1")));
        await ChangeAsync(Server.Smf, new GrantPrivilege("pulled", "p2", "p4", Privilege.Manage));
        Assert.Equal(1, await ChangeAsync(Server.Smf, new CreateGroup("gone", "p1", DeliveryMode.Pull, ["p1"])));
        Assert.Equal(1, await ChangeAsync(Server.Smf, new DeleteGroup("gone", "p1")));

        foreach (var member in new[] { "p1", "p2" })
            await AwaitAssertAsync(async () => Assert.Equal(3, (await KeyStateAsync(Pnes[member], "pushed")).CurrentEpoch), Timeout);
        var content = Assert.IsType<GroupCiphertext>(await Pnes["p1"].Ask<object>(
            new EncryptContent("pushed", Octets.Own("before the restart"u8.ToArray())), Timeout));
        Assert.Equal(3, content.Epoch);

        var inventoryBefore = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        var groupsBefore = new Dictionary<string, GroupState>();
        foreach (var group in new[] { "pushed", "pulled", "gone" })
            groupsBefore[group] = await Server.Smf.Ask<GroupState>(new GetGroup(group), Timeout);
        var keysBefore = new Dictionary<string, HeldGroupKey>();
        foreach (var group in new[] { "pushed", "pulled" })
            keysBefore[group] = await KeyStateAsync(Server.Cskmf, group);
        var keyBytesBefore = await ExportedKeyAsync(Server.Cskmf, "pushed", 3);

        await Sys.Terminate();

        // A new actor system on the same database, the same server secrets.
        using var restarted = ActorSystem.Create("cpns", Config(_storage));
        try
        {
            var serverActor = Deployment.StartServer(restarted, Secrets, Settings);
            var server = await Deployment.EndpointsOf(serverActor, Timeout);

            var inventoryAfter = await server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
            Assert.Equal(inventoryBefore.Gateways, inventoryAfter.Gateways);
            Assert.Equal(inventoryBefore.Pnes, inventoryAfter.Pnes);
            foreach (var (group, before) in groupsBefore)
            {
                var after = await server.Smf.Ask<GroupState>(new GetGroup(group), Timeout);
                Assert.Equal((before.Exists, before.Epoch, before.Mode, before.RequiredSecurityLevel),
                    (after.Exists, after.Epoch, after.Mode, after.RequiredSecurityLevel));
                Assert.Equal(before.Members, after.Members);
                Assert.Equal(before.Acl ?? [], after.Acl ?? []);
            }

            foreach (var (group, before) in keysBefore)
            {
                var after = await server.Cskmf.Ask<HeldGroupKey>(new GetKeyState(group), Timeout);
                Assert.Equal((before.CurrentEpoch, before.KeyCheck), (after.CurrentEpoch, after.KeyCheck));
                Assert.Equal(before.Epochs, after.Epochs);
            }

            Assert.Equal(keyBytesBefore, await ExportedKeyAsync(server.Cskmf, "pushed", 3));

            // The devices come back (same identities) and catch up with their groups' current epochs.
            var gateways = new Dictionary<string, IActorRef>();
            foreach (var gateway in new[] { "g1", "g2" })
                gateways[gateway] = Deployment.StartGateway(restarted, Identities[gateway], Secrets.TrustAnchor, server.Registry,
                    Settings);
            var pnes = new Dictionary<string, IActorRef>();
            foreach (var (pne, gateway) in new[] { ("p1", "g1"), ("p2", "g1"), ("p3", "g2"), ("p4", "g2") })
                pnes[pne] = Deployment.StartPne(restarted, Identities[pne], Secrets.TrustAnchor, gateways[gateway], Settings);
            await AwaitAssertAsync(async () =>
            {
                var inventory = await server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
                var highestBefore = inventoryBefore.Pnes.Concat(inventoryBefore.Gateways).Max(e => int.Parse(e.RegistrationId[2..]));
                Assert.All(inventory.Pnes, e => Assert.True(int.Parse(e.RegistrationId[2..]) > highestBefore,
                    $"{e.DeviceId} got registration id {e.RegistrationId} again"));
            }, Timeout);

            await AwaitAssertAsync(async () =>
            {
                var held = await pnes["p2"].Ask<HeldGroupKey>(new GetKeyState("pushed"), Timeout);
                Assert.Equal((3L, keysBefore["pushed"].KeyCheck), (held.CurrentEpoch, held.KeyCheck));
            }, Timeout);
            var read = Assert.IsType<ContentDecrypted>(await pnes["p2"].Ask<object>(new DecryptContent(content), Timeout));
            Assert.Equal("before the restart", Encoding.UTF8.GetString(read.Plaintext.Span));
            await AwaitAssertAsync(async () =>
                Assert.Equal(2, (await pnes["p4"].Ask<HeldGroupKey>(new GetKeyState("pulled"), Timeout)).CurrentEpoch), Timeout);

            // Epochs continue from where they were, and are never used twice.
            Assert.Equal(4, await ChangeAsync(server.Smf, new AddMember("pushed", "p1", "p4")));
            Assert.Equal(2, await ChangeAsync(server.Smf, new CreateGroup("gone", "p1", DeliveryMode.Pull, ["p1"])));
            // p4 still manages "pulled": the ACL came back with the rest.
            Assert.Equal(3, await ChangeAsync(server.Smf, new AddMember("pulled", "p4", "p3")));
            await AwaitAssertAsync(async () =>
                Assert.Equal(4, (await pnes["p4"].Ask<HeldGroupKey>(new GetKeyState("pushed"), Timeout)).CurrentEpoch), Timeout);
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    /// <summary>
    /// A push group keyed through a logical key hierarchy (more PN GWs than the threshold of 3): its tree comes back
    /// from a snapshot and the events after it exactly as the PN GWs hold it, so after the restart the next change is
    /// still one broadcast that every PN GW follows with the keys it kept — no key wrapped for a PN GW alone.
    /// </summary>
    [Fact]
    public async Task A_large_push_groups_key_tree_is_back_after_a_restart_and_its_PN_GWs_follow_the_next_broadcast()
    {
        var gateways = new[] { "g1", "g2", "g3", "g4", "g5", "g6" };
        await StartNetworkAsync(gateways, gateways.ToDictionary(g => "p" + g[1..], g => g));
        Assert.Equal(1, await ChangeAsync(Server.Smf, new CreateGroup("big", "p1", DeliveryMode.Push, ["p1", "p2", "p3", "p4"])));
        Assert.Equal(2, await ChangeAsync(Server.Smf, new AddMember("big", "p1", "p5")));
        Assert.Equal(3, await ChangeAsync(Server.Smf, new RemoveMember("big", "p1", "p2")));
        Assert.Equal(4, await ChangeAsync(Server.Smf, new AddMember("big", "p1", "p6")));
        var inTree = new[] { "g1", "g3", "g4", "g5", "g6" };
        foreach (var pne in inTree.Select(g => "p" + g[1..]))
            await AwaitAssertAsync(async () => Assert.Equal(4, (await KeyStateAsync(Pnes[pne], "big")).CurrentEpoch), Timeout);

        var treeBefore = await Server.Cskmf.Ask<LkhState>(new GetLkhState("big"), Timeout);
        Assert.Equal((4L, 5), (treeBefore.TreeEpoch, treeBefore.Members));
        var pathsBefore = new Dictionary<string, string>();
        foreach (var gateway in inTree)
            pathsBefore[gateway] = await PathAsync(Server.Cskmf, gateway);

        await RestartServerAsync();
        await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout); // recovered, and its placements are out

        var treeAfter = await Server.Cskmf.Ask<LkhState>(new GetLkhState("big"), Timeout);
        Assert.Equal((treeBefore.TreeEpoch, treeBefore.Members), (treeAfter.TreeEpoch, treeAfter.Members));
        Assert.Equal(treeBefore.Positions, treeAfter.Positions);
        foreach (var gateway in inTree)
        {
            Assert.Equal(pathsBefore[gateway], await PathAsync(Server.Cskmf, gateway));
            Assert.Equal(pathsBefore[gateway], await PathAsync(await Sys.ActorSelection($"/user/gateway-{gateway}/cskmf").ResolveOne(Timeout), gateway));
        }

        Assert.Equal(5, await ChangeAsync(Server.Smf, new RemoveMember("big", "p1", "p3")));
        foreach (var pne in new[] { "p1", "p4", "p5", "p6" })
            await AwaitAssertAsync(async () => Assert.Equal(5, (await KeyStateAsync(Pnes[pne], "big")).CurrentEpoch), Timeout);
        var stats = await Server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, Timeout);
        Assert.Equal((1L, 4L, 0L), (stats.Broadcasts, stats.BroadcastCopies, stats.FlatDeliveries));
        var serverKey = await ExportedKeyAsync(Server.Cskmf, "big", 5);
        foreach (var pne in new[] { "p1", "p4", "p5", "p6" })
            Assert.Equal(serverKey, await ExportedKeyAsync(Pnes[pne], "big", 5));
    }

    /// <summary>An LKH path a key holder keeps: position, size and every key, as text.</summary>
    private async Task<string> PathAsync(IActorRef holder, string memberId)
    {
        var (path, keys) = await ExportedPathAsync(holder, "big", memberId);
        return $"{path.TreeEpoch}@{path.Position}/{path.Size}: " + string.Join(",", keys.Select(k => $"{k.Node}={Convert.ToHexString(k.Key)}"));
    }

    [Fact]
    public async Task The_directory_usage_and_charging_are_back_after_a_restart()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });
        foreach (var (id, offerer, name) in new[] { ("s-radio", "p1", "Jazz radio"), ("s-news", "ace:news", "News radio"),
                     ("s-gone", "p3", "Old radio") })
        {
            Assert.IsType<ServicePublished>(await Server.Directory.Ask<object>(new LocalRequest(new PublishService(new ServiceDescription(id, name,
                offerer, "audio", ["radio"], new Dictionary<string, string>(), [], 0, Privilege.View, null, 0))), Timeout));
        }

        Assert.IsType<ServiceWithdrawn>(await Server.Directory.Ask<object>(new LocalRequest(new WithdrawService("s-gone", "p3")), Timeout));
        await ChangeAsync(Server.Smf, new CreateGroup("listeners", "operator", DeliveryMode.Push, ["p1", "p2", "p3"]));
        foreach (var member in new[] { "p1", "p2", "p3" })
            await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes[member], "listeners")).CurrentEpoch), Timeout);
        for (var i = 0; i < 4; i++)
            Assert.IsType<ContentAccepted>(await Server.Delivery.Ask<object>(new DeliverContent($"d-{i}", "ace:news", "s-news",
                "listeners", Octets.Own(new byte[100 * (i + 1)])), Timeout));

        var charging = await Deployment.ChargingOf(ServerActor, Timeout);
        var search = new LocalRequest(new SearchServices("operator", ["radio"], new Dictionary<string, string>(), 0, 10));
        var foundBefore = await Server.Directory.Ask<SearchResult>(search, Timeout);
        Assert.Equal(["s-news", "s-radio"], foundBefore.Hits.Select(h => h.ServiceId).Order());
        UsageSummary usageBefore = null!;
        ChargingStatement statementBefore = null!;
        await AwaitAssertAsync(async () =>
        {
            usageBefore = await Server.Usage.Ask<UsageSummary>(new QueryUsage(GroupId: "listeners"), Timeout);
            Assert.Equal(4 + 3 * 4, usageBefore.Sessions); // the ACE's four sends, and four deliveries to each member
            statementBefore = await charging.Ask<ChargingStatement>(new GetStatement(StatementSubject.Group, "listeners"), Timeout);
            Assert.Equal(usageBefore.BytesUp + usageBefore.BytesDown, statementBefore.TotalVolumeBytes);
        }, Dilated(TimeSpan.FromSeconds(20)));

        await Sys.Terminate();

        using var restarted = ActorSystem.Create("cpns", Config(_storage));
        try
        {
            var serverActor = Deployment.StartServer(restarted, Secrets, Settings);
            var server = await Deployment.EndpointsOf(serverActor, Timeout);
            var foundAfter = await server.Directory.Ask<SearchResult>(search, Timeout);
            Assert.Equal(foundBefore.Hits.Select(h => (h.ServiceId, h.Description.OffererId)),
                foundAfter.Hits.Select(h => (h.ServiceId, h.Description.OffererId)));
            var usageAfter = await server.Usage.Ask<UsageSummary>(new QueryUsage(GroupId: "listeners"), Timeout);
            Assert.Equal(usageBefore.Records, usageAfter.Records);
            var statementAfter = await (await Deployment.ChargingOf(serverActor, Timeout))
                .Ask<ChargingStatement>(new GetStatement(StatementSubject.Group, "listeners"), Timeout);
            Assert.Equal(statementBefore.Records, statementAfter.Records);
            Assert.Equal(statementBefore.TotalAmount, statementAfter.TotalAmount);
        }
        finally
        {
            await restarted.Terminate();
        }
    }
}

public sealed class SqliteRecoveryTests : RecoveryTests
{
    private static readonly ThreadLocal<TempFolder> Folder = new(() => new TempFolder("cpns-recovery"));
    private readonly TempFolder _folder;

    public SqliteRecoveryTests(ITestOutputHelper output) : base(output, Storage.Sqlite(Folder.Value!.File("cpns.db")))
    {
        _folder = Folder.Value!;
        Folder.Value = new TempFolder("cpns-recovery");
    }

    protected override void AfterAll()
    {
        base.AfterAll();
        _folder.Dispose();
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresRecoveryTests(ITestOutputHelper output, PostgresServer postgres)
    : RecoveryTests(output, Storage.Postgres(postgres.NewDatabase()));
