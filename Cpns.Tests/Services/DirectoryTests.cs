using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Services;

/// <summary>
/// Service publication and discovery in the Metadata Directory — the same tests against the central directory and
/// the distributed one (each PN GW holding its PN's descriptions).
/// </summary>
public abstract class DirectoryTests(ITestOutputHelper output, string mode)
    : CpnsTestKit(output, $"cpns.directory.mode = {mode}\ncpns.connections.heartbeat-interval = 300ms")
{
    private static readonly IReadOnlyDictionary<string, string> NoFilters = new Dictionary<string, string>();

    private Task StartAsync() => StartNetworkAsync(["g1", "g2"],
        new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2", ["p4"] = "g2" });

    protected static ServiceDescription Service(string id, string offerer, string name, string[] keywords, string type = "app",
        Dictionary<string, string>? attributes = null, string? group = null, Privilege privilege = Privilege.View, int lifetime = 0,
        string[]? codecs = null, int minBitrate = 0) =>
        new(id, name, offerer, type, keywords, attributes ?? new Dictionary<string, string>(), codecs ?? [], minBitrate, privilege,
            group, lifetime);

    private async Task<object> PublishAsync(ServiceDescription description) =>
        await Server.Directory.Ask<object>(new LocalRequest(new PublishService(description)), Timeout);

    private async Task<SearchResult> SearchAsync(string consumer, string[] keywords, int offset = 0, int limit = 10,
        IReadOnlyDictionary<string, string>? filters = null) =>
        Assert.IsType<SearchResult>(await Server.Directory.Ask<object>(
            new LocalRequest(new SearchServices(consumer, keywords, filters ?? NoFilters, offset, limit)), Timeout));

    private static string[] Ids(SearchResult result) => result.Hits.Select(h => h.ServiceId).ToArray();

    [Fact]
    public async Task A_published_service_is_found_ranked_above_weaker_matches_and_updates_change_the_ranking()
    {
        await StartAsync();
        Assert.IsType<ServicePublished>(await PublishAsync(Service("s-radio", "p1", "Jazz Radio", ["music", "jazz", "radio"], "audio-stream")));
        Assert.IsType<ServicePublished>(await PublishAsync(Service("s-news", "p2", "News Radio", ["news", "radio"])));
        Assert.IsType<ServicePublished>(await PublishAsync(Service("s-books", "p3", "Book store", ["books"],
            attributes: new Dictionary<string, string> { ["topic"] = "jazz history" })));

        var jazz = await SearchAsync("p4", ["jazz"]);
        // Name (3) + keyword (2) above an attribute match (1) even with the same-PN boost (p3 and p4 share g2: ×1.5).
        Assert.Equal(["s-radio", "s-books"], Ids(jazz));
        Assert.Equal(2, jazz.Total);
        Assert.Equal([5.0, 1.5], jazz.Hits.Select(h => h.Score));

        var update = Assert.IsType<ServicePublished>(await PublishAsync(
            Service("s-books", "p3", "Jazz Books", ["jazz", "books"], attributes: new Dictionary<string, string> { ["topic"] = "jazz history" })));
        Assert.Equal(2, update.Version);
        var updated = await SearchAsync("p4", ["jazz"]);
        Assert.Equal(["s-books", "s-radio"], Ids(updated));
        Assert.Equal([9.0, 5.0], updated.Hits.Select(h => h.Score)); // (3 + 2 + 1) × 1.5

        // Filters narrow, and every keyword counts.
        Assert.Equal(["s-radio"], Ids(await SearchAsync("p4", ["jazz"], filters: new Dictionary<string, string> { ["type"] = "audio-stream" })));
        Assert.Equal(["s-news", "s-radio"], Ids(await SearchAsync("p4", ["radio"]))); // a tie (5), broken by id
    }

    [Fact]
    public async Task Withdrawal_and_lifetime_expiry_remove_a_service()
    {
        await StartAsync();
        await PublishAsync(Service("s-a", "p1", "Alpha", ["alpha"]));
        await PublishAsync(Service("s-b", "p3", "Alpha beta", ["alpha"], lifetime: 1));
        Assert.Equal(2, (await SearchAsync("p2", ["alpha"])).Total);

        Assert.IsType<DirectoryRejected>(await Server.Directory.Ask<object>(new LocalRequest(new WithdrawService("s-a", "p3")), Timeout));
        Assert.IsType<ServiceWithdrawn>(await Server.Directory.Ask<object>(new LocalRequest(new WithdrawService("s-a", "p1")), Timeout));
        Assert.Equal(DirectoryError.UnknownService,
            Assert.IsType<DirectoryRejected>(await Server.Directory.Ask<object>(new LocalRequest(new WithdrawService("s-a", "p1")), Timeout)).Error);

        await AwaitAssertAsync(async () => Assert.Equal(0, (await SearchAsync("p2", ["alpha"])).Total), Dilated(TimeSpan.FromSeconds(8)));
    }

    [Fact]
    public async Task Paging_returns_stable_complete_pages()
    {
        await StartAsync();
        var offerers = new[] { "p1", "p2", "p3", "p4" };
        for (var i = 0; i < 25; i++)
        {
            var keywords = i % 3 == 0 ? new[] { "game", "chess" } : new[] { "game" };
            await PublishAsync(Service($"s-{i:D2}", offerers[i % 4], i % 5 == 0 ? "Game night" : $"Board {i}", keywords));
        }

        var everything = await SearchAsync("operator", ["game", "chess"], 0, 100);
        Assert.Equal(25, everything.Total);
        var pages = new List<string>();
        for (var offset = 0; offset < 25; offset += 10)
        {
            var page = await SearchAsync("operator", ["game", "chess"], offset, 10);
            Assert.Equal(25, page.Total);
            Assert.Equal(Math.Min(10, 25 - offset), page.Hits.Count);
            pages.AddRange(Ids(page));
        }

        Assert.Equal(Ids(everything), pages);
        Assert.Equal(25, pages.Distinct().Count());
        Assert.Equal(Ids(everything), Ids(await SearchAsync("operator", ["game", "chess"], 0, 100)));
        Assert.True(everything.Hits.Zip(everything.Hits.Skip(1)).All(p => p.Item1.Score >= p.Item2.Score));
    }

    [Fact]
    public async Task A_consumer_without_the_privilege_does_not_see_a_restricted_service()
    {
        await StartAsync();
        Server.Smf.Tell(new LocalRequest(new CreateGroup("club", "p1", DeliveryMode.Pull, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await PublishAsync(Service("s-club", "p1", "Club cinema", ["cinema"], group: "club", privilege: Privilege.Operate));
        await PublishAsync(Service("s-open", "p3", "Open cinema", ["cinema"]));

        Assert.Equal(["s-club", "s-open"], Ids(await SearchAsync("p2", ["cinema"])).Order());
        var outsider = await SearchAsync("p4", ["cinema"]);
        Assert.Equal(["s-open"], Ids(outsider));
        Assert.Equal(1, outsider.Total);

        // Offering into a group takes managing it; joining a closed group takes a manager.
        Pnes["p3"].Tell(new LocalRequest(new PublishService(Service("s-sneak", "p3", "Sneaky", ["cinema"], group: "club"))), TestActor);
        Assert.Equal(DirectoryError.NotAuthorized, (await ExpectMsgAsync<DirectoryRejected>(Timeout)).Error);
        Pnes["p4"].Tell(new LocalRequest(new AddMember("club", "p4", "p4")), TestActor);
        Assert.Equal(GroupError.NotAuthorized, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);
    }

    [Fact]
    public async Task Offerers_in_the_consumers_own_PN_rank_first_and_unreachable_offerers_last()
    {
        await StartAsync();
        await PublishAsync(Service("s-near", "p2", "Printer", ["print"]));
        await PublishAsync(Service("s-far", "p3", "Printer", ["print"]));
        Assert.Equal(["s-near", "s-far"], Ids(await SearchAsync("p1", ["print"]))); // p1 and p2 share g1's PN
        Assert.Equal(["s-far", "s-near"], Ids(await SearchAsync("p4", ["print"]))); // p4 and p3 share g2's PN

        Pnes["p3"].Tell(new Sleep("p3"));
        await AwaitAssertAsync(async () => Assert.Equal(["s-near", "s-far"], Ids(await SearchAsync("p4", ["print"]))), Timeout);
    }

    [Fact]
    public async Task A_PNE_searches_through_its_gateway_which_answers_repeats_from_its_cache()
    {
        await StartAsync();
        Pnes["p3"].Tell(new LocalRequest(new PublishService(Service("s-map", "p3", "City map", ["map"]))), TestActor);
        Assert.IsType<ServicePublished>(await ExpectMsgAsync<object>(Timeout));

        Pnes["p1"].Tell(new LocalRequest(new SearchServices("p1", ["map"], NoFilters, 0, 10, RequestId: 7)), TestActor);
        var first = await ExpectMsgAsync<SearchResult>(Timeout);
        Assert.Equal(["s-map"], Ids(first));
        Assert.Equal((false, 7L), (first.FromCache, first.RequestId));
        Pnes["p1"].Tell(new LocalRequest(new SearchServices("p1", ["map"], NoFilters, 0, 10, RequestId: 8)), TestActor);
        var second = await ExpectMsgAsync<SearchResult>(Timeout);
        Assert.Equal((true, 8L), (second.FromCache, second.RequestId));
        Assert.Equal(["s-map"], Ids(second));
    }

    [Fact]
    public async Task Bad_descriptions_and_queries_are_refused()
    {
        await StartAsync();
        Assert.Equal(DirectoryError.InvalidDescription,
            Assert.IsType<DirectoryRejected>(await PublishAsync(Service("bad id!", "p1", "x", []))).Error);
        Assert.Equal(DirectoryError.NotAuthorized,
            Assert.IsType<DirectoryRejected>(await PublishAsync(Service("s-x", "ghost", "x", []))).Error);
        Assert.IsType<SearchRejected>(await Server.Directory.Ask<object>(new LocalRequest(new SearchServices("p1", ["x"], NoFilters, 0, 0)), Timeout));
        Assert.IsType<SearchRejected>(await Server.Directory.Ask<object>(new LocalRequest(new SearchServices("p1", ["x"], NoFilters, -1, 5)), Timeout));
        // A PNE cannot publish in another's name.
        Pnes["p1"].Tell(new LocalRequest(new PublishService(Service("s-y", "p2", "Fake", ["x"]))), TestActor);
        Assert.Equal(DirectoryError.NotOfferer, (await ExpectMsgAsync<DirectoryRejected>(Timeout)).Error);
        // An external Application/Content Entity publishes over CPNS-5 (here: a local caller).
        Assert.IsType<ServicePublished>(await PublishAsync(Service("s-ace", "ace:radio-co", "Radio company", ["music"])));
        Assert.Equal(["s-ace"], Ids(await SearchAsync("p1", ["music"])));
    }
}

public sealed class CentralDirectoryTests(ITestOutputHelper output) : DirectoryTests(output, "central");

public sealed class DistributedDirectoryTests(ITestOutputHelper output) : DirectoryTests(output, "distributed");
