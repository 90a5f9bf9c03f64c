using System.Text;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Services;

/// <summary>
/// BOTH mode (seed Appendix A.1.2.2): a device that is a PN GW and also a PNE offers and consumes services and sends and
/// receives group content for its own applications; a PN GW only does not.
/// </summary>
public sealed class BothModeTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.usage.report-interval = 200ms")
{
    private static readonly IReadOnlyDictionary<string, string> NoFilters = new Dictionary<string, string>();

    private static ServiceDescription Service(string id, string offerer, string keyword) =>
        new(id, $"{keyword} of {offerer}", offerer, "app", [keyword], new Dictionary<string, string>(), [], 0, Privilege.View, null, 0);

    private async Task StartAsync()
    {
        await StartServerAsync();
        StartGateway("b1", EntityKind.Both);
        StartGateway("g1");
        await AwaitRegisteredAsync(Gateways.Values);
        StartPne("p1", "g1");
        StartPne("p2", "b1");
        await AwaitRegisteredAsync(Pnes.Values);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("family", "operator", DeliveryMode.Push, ["b1", "p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var holder in new[] { Gateways["b1"], Pnes["p1"], Pnes["p2"] })
            await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(holder, "family")).CurrentEpoch), Timeout);
    }

    private async Task<IReadOnlyList<ReceivedItem>> ReceivedAsync(IActorRef device, string id) =>
        (await device.Ask<ReceivedContent>(new GetReceivedContent(id), Timeout)).Items;

    private async Task<ReceivedItem> AwaitReceivedAsync(IActorRef device, string id, string deliveryId)
    {
        ReceivedItem? item = null;
        await AwaitAssertAsync(async () => item = Assert.Single(await ReceivedAsync(device, id), i => i.DeliveryId == deliveryId), Timeout);
        return item!;
    }

    private static string Text(ReceivedItem item) => Encoding.UTF8.GetString(item.Plaintext!.Span);

    [Fact]
    public async Task A_BOTH_device_offers_and_finds_services_and_sends_and_receives_its_groups_content()
    {
        await StartAsync();

        // It publishes as the offerer it is; a PNE behind another PN GW finds it, and it finds the PNE's service.
        Assert.IsType<ServicePublished>(await Gateways["b1"].Ask<object>(new LocalRequest(new PublishService(Service("s-b1", "b1", "photos"))), Timeout));
        Assert.IsType<ServicePublished>(await Pnes["p1"].Ask<object>(new LocalRequest(new PublishService(Service("s-p1", "p1", "music"))), Timeout));
        var found = Assert.IsType<SearchResult>(await Pnes["p1"].Ask<object>(
            new LocalRequest(new SearchServices("p1", ["photos"], NoFilters, 0, 10)), Timeout));
        Assert.Equal(("s-b1", "b1"), (found.Hits.Single().ServiceId, found.Hits.Single().Description.OffererId));
        var itsSearch = Assert.IsType<SearchResult>(await Gateways["b1"].Ask<object>(
            new LocalRequest(new SearchServices("b1", ["music"], NoFilters, 0, 10, RequestId: 41)), Timeout));
        Assert.Equal((41L, "s-p1"), (itsSearch.RequestId, itsSearch.Hits.Single().ServiceId));
        // It cannot publish in another's name (the server checks the signer against the offerer).
        var foreign = Assert.IsType<DirectoryRejected>(await Gateways["b1"].Ask<object>(
            new LocalRequest(new PublishService(Service("s-fake", "p1", "fake"))), Timeout));
        Assert.Equal(DirectoryError.NotOfferer, foreign.Error);

        // A PNE's content reaches the BOTH device itself (opened with the key its CSKMF holds) and the PNE behind it.
        var fromPne = Assert.IsType<ContentAccepted>(await Pnes["p1"].Ask<object>(
            new SendContent("d-p1", "s-p1", "family", Octets.Own("dinner at 7"u8.ToArray())), Timeout));
        Assert.Equal(["b1", "p2"], fromPne.Gateways["b1"]);
        var atBoth = await AwaitReceivedAsync(Gateways["b1"], "b1", "d-p1");
        Assert.Equal(("p1", 1L, "dinner at 7"), (atBoth.SenderId, atBoth.Epoch, Text(atBoth)));
        Assert.Equal("dinner at 7", Text(await AwaitReceivedAsync(Pnes["p2"], "p2", "d-p1")));

        // And its own content, encrypted by it as the sender, reaches both PNEs.
        var fromBoth = Assert.IsType<ContentAccepted>(await Gateways["b1"].Ask<object>(
            new SendContent("d-b1", "s-b1", "family", Octets.Own("new album"u8.ToArray())), Timeout));
        Assert.Equal(["p1"], fromBoth.Gateways["g1"]);
        Assert.Equal(["p2"], fromBoth.Gateways["b1"]);
        foreach (var (id, pne) in new[] { ("p1", Pnes["p1"]), ("p2", Pnes["p2"]) })
        {
            var item = await AwaitReceivedAsync(pne, id, "d-b1");
            Assert.Equal(("b1", "new album"), (item.SenderId, Text(item)));
        }

        Assert.DoesNotContain(await ReceivedAsync(Gateways["b1"], "b1"), i => i.DeliveryId == "d-b1"); // not to itself

        // Its own traffic is in its PN GW's usage reports, as its PNEs' is.
        await AwaitAssertAsync(async () =>
        {
            var usage = await Server.Usage.Ask<UsageSummary>(new QueryUsage("b1"), Timeout);
            Assert.Contains(usage.Records, r => r.ServiceId == "s-b1" && r.BytesUp > 0);
            Assert.Contains(usage.Records, r => r.ServiceId == "s-p1" && r.BytesDown > 0);
        }, Timeout);
    }

    [Fact]
    public async Task A_PN_GW_only_neither_offers_services_nor_takes_content_and_bare_requests_are_counted()
    {
        await StartAsync();
        Assert.Equal(DirectoryError.NotAuthorized, Assert.IsType<DirectoryRejected>(await Gateways["g1"].Ask<object>(
            new LocalRequest(new PublishService(Service("s-g1", "g1", "photos"))), Timeout)).Error);
        Assert.Equal(DirectoryError.NotAuthorized, Assert.IsType<SearchRejected>(await Gateways["g1"].Ask<object>(
            new LocalRequest(new SearchServices("g1", ["photos"], NoFilters, 0, 10)), Timeout)).Error);
        Assert.Equal(DeliveryError.NotAuthorized, Assert.IsType<ContentRejected>(await Gateways["g1"].Ask<object>(
            new SendContent("d-g1", "s", "family", Octets.Own([1])), Timeout)).Error);
        // The server holds the same line for anyone publishing in a PN GW's name, the operator included.
        var operatorForGateway = Assert.IsType<DirectoryRejected>(await Server.Directory.Ask<object>(
            new LocalRequest(new PublishService(Service("s-g1", "g1", "photos"))), Timeout));
        Assert.Equal(DirectoryError.NotAuthorized, operatorForGateway.Error);

        // A bare request (from another process, not the device's applications) is refused and counted, and nothing is published.
        Gateways["b1"].Tell(new PublishService(Service("s-bare", "b1", "bare")), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(1,
            (await Gateways["b1"].Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("BareRequest")), Timeout);
        var search = Assert.IsType<SearchResult>(await Pnes["p1"].Ask<object>(new LocalRequest(new SearchServices("p1", ["bare"], NoFilters, 0, 10)), Timeout));
        Assert.Empty(search.Hits);
    }
}
