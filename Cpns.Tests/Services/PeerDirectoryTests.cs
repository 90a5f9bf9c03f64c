using Cpns.Actors.Security;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Services;

/// <summary>
/// The distributed directory peer to peer (seed Appendix A.1.3): PN GWs search each other for their PNEs under search
/// grants the server signs, so searches go on with the server stopped, and the set of peers follows PN GWs joining and
/// leaving.
/// </summary>
public sealed class PeerDirectoryTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.directory.mode = distributed
    cpns.directory.fan-out-timeout = 1s
    cpns.directory.cache-ttl = 0s
    """)
{
    private static readonly IReadOnlyDictionary<string, string> NoFilters = new Dictionary<string, string>();

    private static ServiceDescription Service(string id, string offerer, string keyword, string? group = null) =>
        new(id, $"{keyword} by {offerer}", offerer, "app", [keyword], new Dictionary<string, string>(), [], 0, Privilege.View, group, 0);

    private async Task<object> SearchAsync(string pne, string keyword) =>
        await Pnes[pne].Ask<object>(new LocalRequest(new SearchServices(pne, [keyword], NoFilters, 0, 10)), Timeout);

    private async Task<string[]> FoundAsync(string pne, string keyword) =>
        Assert.IsType<SearchResult>(await SearchAsync(pne, keyword)).Hits.Select(h => h.ServiceId).Order().ToArray();

    /// <summary>Until each PN GW's directory searches exactly these peers.</summary>
    private async Task AwaitPeersAsync(params string[] gateways)
    {
        foreach (var gateway in gateways)
            await AwaitAssertAsync(async () =>
            {
                var directory = await Sys.ActorSelection($"/user/gateway-{gateway}/directory-cache").ResolveOne(Timeout);
                var peers = await directory.Ask<DirectoryPeers>(GetDirectoryPeers.Instance, Timeout);
                Assert.Equal(gateways.Where(g => g != gateway), peers.Peers.Select(p => p.GatewayId));
            }, Timeout);
    }

    private async Task PublishAsync(string pne, ServiceDescription service) =>
        Assert.IsType<ServicePublished>(await Pnes[pne].Ask<object>(new LocalRequest(new PublishService(service)), Timeout));

    [Fact]
    public async Task PN_GWs_answer_each_others_searches_within_the_grant_with_the_server_stopped_and_the_peers_follow_PN_GWs_joining_and_leaving()
    {
        await StartNetworkAsync(["g1", "g2", "g3"],
            new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p5"] = "g1", ["p3"] = "g2", ["p4"] = "g3" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("club", "p4", DeliveryMode.Push, ["p4", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await PublishAsync("p3", Service("s-map", "p3", "map"));
        await PublishAsync("p4", Service("s-club-map", "p4", "map", group: "club"));

        // Each PN GW searches the others itself: p1 sees the open service, p2 (a club member) the club's too.
        await AwaitPeersAsync("g1", "g2", "g3");
        Assert.Equal(["s-map"], await FoundAsync("p1", "map"));
        Assert.Equal(["s-club-map", "s-map"], await FoundAsync("p2", "map"));

        // The server stops: searches under the grants already held go on, peer to peer.
        var watcher = CreateTestProbe();
        watcher.Watch(ServerActor);
        Sys.Stop(ServerActor);
        await watcher.ExpectTerminatedAsync(ServerActor, Timeout);
        Assert.Equal(["s-map"], await FoundAsync("p1", "map"));
        Assert.Equal(["s-club-map", "s-map"], await FoundAsync("p2", "map"));
        // p5 never searched: with no grant and no server to ask, it is told so.
        var refused = Assert.IsType<SearchRejected>(await SearchAsync("p5", "map"));
        Assert.Equal(DirectoryError.Unavailable, refused.Error);

        // The server back, a PN GW joins: once the peers hear of it, its PN's services are found too.
        await StartServerAsync();
        StartGateway("g4");
        await AwaitRegisteredAsync([Gateways["g4"]]);
        StartPne("p6", "g4");
        await AwaitRegisteredAsync([Pnes["p6"]]);
        await AwaitAssertAsync(async () => await PublishAsync("p6", Service("s-map-2", "p6", "map")), Timeout);
        await AwaitPeersAsync("g1", "g2", "g3", "g4");
        Assert.Equal(["s-map", "s-map-2"], await FoundAsync("p1", "map"));

        // A PN GW leaves (its credential revoked): the peers drop it, and what its PN offered is no longer found.
        Server.Registry.Tell(new RevokeCredential("g2", "stolen"), TestActor);
        await ExpectMsgAsync<CredentialRevocationAccepted>(Timeout);
        await AwaitPeersAsync("g1", "g3", "g4");
        Assert.Equal(["s-map-2"], await FoundAsync("p1", "map"));
    }

    [Fact]
    public async Task A_peer_search_without_the_servers_grant_for_the_searching_PN_GW_is_refused_and_counted()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p3"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("club", "p3", DeliveryMode.Push, ["p3"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await PublishAsync("p3", Service("s-club-map", "p3", "map", group: "club"));
        await AwaitPeersAsync("g1", "g2");
        Assert.Empty(await FoundAsync("p1", "map"));

        // g1 makes up a grant giving p1 the club's privileges: signed by g1, not by the server.
        var forged = SearchGrant.Sign(Identities["g1"], "p1", "g1", new Dictionary<string, Privilege> { ["club"] = Privilege.Manage },
            DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeMilliseconds()) with { ServerId = Settings.ServerId };
        var g2Directory = await Sys.ActorSelection("/user/gateway-g2/directory-cache").ResolveOne(Timeout);
        var query = new SearchServices("p1", ["map"], NoFilters, 0, 10);
        g2Directory.Tell(SealAs("g1", new PeerSearch(99, query, new SearchContext("p1", "g1"), forged)), TestActor);
        var answer = Unseal<ShardResults>(await ExpectMsgAsync<object>(Timeout));
        Assert.Equal((99L, 0), (answer.RequestId, answer.Hits.Count));
        Assert.Equal(1, (await g2Directory.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections
            .GetValueOrDefault("SearchGrantRefused"));
    }
}
