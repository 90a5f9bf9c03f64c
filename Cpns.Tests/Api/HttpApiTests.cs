using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Security;
using Cpns.Actors.Protocol;
using Cpns.Host.Api;
using Cpns.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Api;

/// <summary>
/// The server node's HTTP API end to end: a real server entity with PN GWs and PNEs, the API on a free 127.0.0.1 port
/// over HTTPS, real HTTP clients with their own keys. Every answer is checked against what the actors then hold.
/// </summary>
public sealed class HttpApiTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.usage.report-interval = 200ms
    cpns.charging.unit-bytes = 100
    cpns.charging.default-rate = 0.01
    """)
{
    private static readonly Dictionary<string, string> Layout = new() { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2", ["p4"] = "g2" };
    private static readonly JsonSerializerOptions Json = ApiHost.Json;

    private async Task<ApiUnderTest> StartAsync(int requestsPerSecond = 1000, long maxBodyBytes = 1_500_000)
    {
        await StartNetworkAsync(["g1", "g2"], Layout);
        return await ApiUnderTest.StartAsync(Sys, Server, await Deployment.ChargingOf(ServerActor, Timeout), requestsPerSecond, maxBodyBytes);
    }

    private static async Task<T> OkAsync<T>(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {body}");
        return JsonSerializer.Deserialize<T>(body, Json)!;
    }

    /// <summary>A refusal: its status, and a problem+json body whose type is the stable one named.</summary>
    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(type, problem.GetProperty("type").GetString());
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }

    private static StringContent JsonBody(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<long> CreateCinemaAsync(HttpClient op, DeliveryMode mode = DeliveryMode.Push)
    {
        var created = await OkAsync<GroupAccepted>(await op.PostAsJsonAsync("operator/v1/groups",
            new NewGroupBody("cinema", mode, ["p1", "p2", "p3"]), Json), HttpStatusCode.Created);
        foreach (var member in new[] { "p1", "p2", "p3" })
            await AwaitAssertAsync(async () => Assert.Equal(created.Epoch, (await KeyStateAsync(Pnes[member], "cinema")).CurrentEpoch), Timeout);
        return created.Epoch;
    }

    private static ServiceBody Film(string? groupId = "cinema") =>
        new("Film night", "video-stream", ["film", "cinema"], new Dictionary<string, string> { ["lang"] = "en" }, GroupId: groupId);

    [Fact]
    public async Task An_ACE_publishes_a_PNE_finds_it_the_ACE_delivers_to_the_group_members_decrypt_it_and_usage_and_charging_show_it()
    {
        await using var api = await StartAsync();
        var op = api.Client("alice", ApiRole.Operator);
        var ace = api.Client("studio");
        var before = await op.GetStringAsync("metrics");
        var epoch = await CreateCinemaAsync(op);
        await OkAsync<GroupAccepted>(await op.PutAsJsonAsync("operator/v1/groups/cinema/grants/ace:studio", new GrantBody(Privilege.Manage), Json));

        var published = await OkAsync<ServicePublished>(await ace.PutAsJsonAsync("ace/v1/services/s-film", Film(), Json));
        Assert.Equal(("s-film", 1L), (published.ServiceId, published.Version));
        var own = await OkAsync<List<ServiceView>>(await ace.GetAsync("ace/v1/services"));
        Assert.Equal("ace:studio", Assert.Single(own).Description.OffererId);

        // A member finds the ACE's service through its PN GW, on CPNS-1; a PNE outside the group does not see it.
        Pnes["p3"].Tell(new LocalRequest(new SearchServices("p3", ["film"], new Dictionary<string, string>(), 0, 10, RequestId: 3)), TestActor);
        var found = await ExpectMsgAsync<SearchResult>(Timeout);
        Assert.Equal(["s-film"], found.Hits.Select(h => h.ServiceId));
        Assert.Equal("ace:studio", found.Hits[0].Description.OffererId);
        Pnes["p4"].Tell(new LocalRequest(new SearchServices("p4", ["film"], new Dictionary<string, string>(), 0, 10, RequestId: 4)), TestActor);
        Assert.Empty((await ExpectMsgAsync<SearchResult>(Timeout)).Hits);
        var searched = await OkAsync<SearchResult>(await ace.GetAsync("ace/v1/search?keywords=film,cinema&filter=lang=en"));
        Assert.Equal(["s-film"], searched.Hits.Select(h => h.ServiceId));

        var delivery = await OkAsync<DeliveryView>(await ace.PostAsJsonAsync("ace/v1/deliveries",
            new DeliveryBody("d-1", "s-film", Text: "tonight: the third man"), Json), HttpStatusCode.Created);
        Assert.Equal(("cinema", epoch), (delivery.GroupId, delivery.Epoch));
        Assert.Equal(["g1", "g2"], delivery.Gateways.Keys.Order());
        Assert.Equal(["p1", "p2"], delivery.Gateways["g1"]);
        Assert.Equal(["p3"], delivery.Gateways["g2"]);
        var readBack = await OkAsync<DeliveryView>(await ace.GetAsync("ace/v1/deliveries/d-1"));
        Assert.Equal(JsonSerializer.Serialize(delivery, Json), JsonSerializer.Serialize(readBack, Json));

        foreach (var member in new[] { "p1", "p2", "p3" })
        {
            await AwaitAssertAsync(async () =>
            {
                var item = Assert.Single((await Pnes[member].Ask<ReceivedContent>(new GetReceivedContent(member), Timeout)).Items);
                Assert.Equal(("ace:studio:d-1", "ace:studio"), (item.DeliveryId, item.SenderId));
                Assert.Equal("tonight: the third man", Encoding.UTF8.GetString(item.Plaintext!.ToArray()));
            }, Timeout);
        }

        Assert.Empty((await Pnes["p4"].Ask<ReceivedContent>(new GetReceivedContent("p4"), Timeout)).Items);

        // To one member only: the same encryption, one PN GW, one recipient.
        var single = await OkAsync<DeliveryView>(await ace.PostAsJsonAsync("ace/v1/deliveries",
            new DeliveryBody("d-2", "s-film", TargetDeviceId: "p2", Content: Convert.ToBase64String("for p2"u8.ToArray())), Json), HttpStatusCode.Created);
        Assert.Equal(["g1"], single.Gateways.Keys);
        Assert.Equal(["p2"], single.Gateways["g1"]);
        await AwaitAssertAsync(async () => Assert.Contains("ace:studio:d-2",
            (await Pnes["p2"].Ask<ReceivedContent>(new GetReceivedContent("p2"), Timeout)).Items.Select(i => i.DeliveryId)), Timeout);
        Assert.DoesNotContain("ace:studio:d-2", (await Pnes["p1"].Ask<ReceivedContent>(new GetReceivedContent("p1"), Timeout)).Items.Select(i => i.DeliveryId));

        // Usage: the ACE's uploads once each, and each recipient's download, reported by the PN GWs; charging follows from it.
        var bytes = delivery.CiphertextBytes;
        var singleBytes = single.CiphertextBytes;
        await AwaitAssertAsync(async () =>
        {
            var usage = await OkAsync<UsageView>(await ace.GetAsync("ace/v1/usage"));
            Assert.Equal((bytes + singleBytes, 3L * bytes + singleBytes), (usage.BytesUp, usage.BytesDown));
            Assert.Equal(["ace:studio", "p1", "p2", "p3"], usage.Records.Select(r => r.DeviceId).Distinct().Order());
        }, Timeout);
        await AwaitAssertAsync(async () =>
        {
            var charging = await OkAsync<ChargingStatement>(await ace.GetAsync("ace/v1/charging"));
            Assert.Equal(["ace:studio", "p1", "p2", "p3"], charging.Records.Select(r => r.UserId).Distinct().Order());
            Assert.All(charging.Records, r => Assert.Equal("s-film", r.ServiceId));
            Assert.Equal(4L * bytes + 2L * singleBytes, charging.TotalVolumeBytes);
        }, Timeout);

        // The scrape shows what happened: two accepted deliveries (to two PN GWs, then to one), three searches, two PN GWs'
        // key acknowledgements.
        await AwaitAssertAsync(async () =>
        {
            var after = await op.GetStringAsync("metrics");
            double Delta(string name, string labels = "") => ApiUnderTest.Series(after, name, labels) - ApiUnderTest.Series(before, name, labels);
            Assert.Contains("service_name=\"cpns\"", after); // the resource is named, not unknown_service:dotnet
            Assert.Equal(2, Delta("cpns_content_deliveries_total", "outcome=\"accepted\""));
            Assert.Equal(2.0 * bytes + singleBytes, Delta("cpns_content_bytes_total"));
            Assert.Equal(3, Delta("cpns_directory_searches_total", "outcome=\"answered\""));
            Assert.Equal(2, Delta("cpns_key_delivery_duration_milliseconds_count", "mode=\"push\""));
            Assert.Equal(1, Delta("cpns_rekeys_total", "mode=\"push\""));
            Assert.Equal(2, ApiUnderTest.Series(after, "cpns_leases", "kind=\"pn-gateway\""));
            Assert.Equal(4, ApiUnderTest.Series(after, "cpns_leases", "kind=\"pne\""));
            Assert.Contains("cpns_mailbox_depth{", after);
        }, Timeout);
    }

    [Fact]
    public async Task The_operator_manages_groups_devices_and_charging_with_the_same_rules_as_the_protocol_path()
    {
        await using var api = await StartAsync();
        var op = api.Client("alice", ApiRole.Operator);
        var epoch = await CreateCinemaAsync(op, DeliveryMode.Pull);

        var inventory = await OkAsync<Inventory>(await op.GetAsync("operator/v1/inventory"));
        Assert.Equal(["g1", "g2"], inventory.Gateways.Select(g => g.DeviceId).Order());
        Assert.Equal(["p1", "p2", "p3", "p4"], inventory.Pnes.Select(p => p.DeviceId).Order());
        Assert.True((await OkAsync<Lease>(await op.GetAsync("operator/v1/devices/p1/lease"))).Registered);
        await ProblemAsync(await op.GetAsync("operator/v1/devices/nobody/lease"), HttpStatusCode.NotFound, "urn:cpns:problem:request:not-found");

        var added = await OkAsync<GroupAccepted>(await op.PostAsJsonAsync("operator/v1/groups/cinema/members", new MemberBody("p4"), Json));
        Assert.Equal((GroupChange.MemberAdded, epoch + 1), (added.Change, added.Epoch));
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/groups/cinema/members", new MemberBody("p4"), Json), HttpStatusCode.Conflict,
            "urn:cpns:problem:group:already-member");
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/groups", new NewGroupBody("cinema", DeliveryMode.Push, ["p1"]), Json),
            HttpStatusCode.Conflict, "urn:cpns:problem:group:group-exists");
        var removed = await OkAsync<GroupAccepted>(await op.DeleteAsync("operator/v1/groups/cinema/members/p1"));
        Assert.Equal((GroupChange.MemberRemoved, epoch + 2), (removed.Change, removed.Epoch));
        Assert.Equal(["p2", "p3", "p4"], removed.Members.Order());

        var group = await OkAsync<GroupState>(await op.GetAsync("operator/v1/groups/cinema"));
        Assert.Equal(epoch + 2, group.Epoch);
        Assert.Equal(group.Epoch, (await Server.Smf.Ask<GroupState>(new GetGroup("cinema"), Timeout)).Epoch);
        var keys = await OkAsync<GroupKeysView>(await op.GetAsync("operator/v1/groups/cinema/keys"));
        var tree = await Server.Cskmf.Ask<LkhState>(new GetLkhState("cinema"), Timeout);
        Assert.Equal(new GroupKeysView("cinema", DeliveryMode.Pull, epoch + 2, tree.Members, tree.TreeEpoch), keys);
        Assert.DoesNotContain("key\"", (await op.GetStringAsync("operator/v1/groups/cinema/keys")).Replace("keys", ""));

        var status = await OkAsync<EntityStatus>(await op.GetAsync("operator/v1/devices/p2/status"));
        Assert.Equal(("p2", true), (status.DeviceId, status.Reachable));
        var pidf = await op.GetAsync("operator/v1/devices/p2/presence");
        Assert.Equal("application/pidf+xml", pidf.Content.Headers.ContentType?.MediaType);
        Assert.Contains("entity=\"pres:p2@cpns\"", await pidf.Content.ReadAsStringAsync());

        var dm = await OkAsync<DmResult>(await op.PostAsJsonAsync("operator/v1/devices/p2/dm", new DmBody(DmOperation.Get, "./CPNS/Gateway"), Json));
        Assert.Equal((DmStatus.Ok, "g1"), (dm.Status, dm.Value));
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/devices/p2/dm", new DmBody(DmOperation.Get, "./No/Such"), Json),
            HttpStatusCode.NotFound, "urn:cpns:problem:dm:not-found");

        // Provisioning through the API: the token enrols a new PNE through its PN GW; the id cannot be provisioned twice.
        var provisioned = await OkAsync<ProvisionedView>(await op.PostAsJsonAsync("operator/v1/devices",
            new ProvisionBody("p9", EntityKind.Pne), Json), HttpStatusCode.Created);
        Assert.True(Enrolment.IsToken(provisioned.Token));
        var p9 = Deployment.StartPne(Sys, EntityIdentity.Generate("p9", EntityKind.Pne), Secrets.TrustAnchor, Gateways["g2"], Settings,
            enrolmentToken: provisioned.Token);
        await AwaitRegisteredAsync([p9]);
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/devices", new ProvisionBody("p9", EntityKind.Pne), Json), HttpStatusCode.Conflict,
            "urn:cpns:problem:provisioning:refused");
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/devices", new ProvisionBody("srv", EntityKind.Server), Json), HttpStatusCode.Conflict,
            "urn:cpns:problem:provisioning:refused");

        // A PN GW provisioned with a PN security ceiling is held to it, whatever it declares; a PNE has no ceiling.
        var g9Token = (await OkAsync<ProvisionedView>(await op.PostAsJsonAsync("operator/v1/devices",
            new ProvisionBody("g9", EntityKind.PnGateway, PnSecurityCeiling: SecurityLevel.Medium), Json), HttpStatusCode.Created)).Token;
        var g9 = Deployment.StartGateway(Sys, EntityIdentity.Generate("g9", EntityKind.PnGateway), Secrets.TrustAnchor, Server.Registry,
            Settings, DeviceCapabilities.Gateway(SecurityLevel.High), enrolmentToken: g9Token);
        await AwaitRegisteredAsync([g9]);
        Assert.Equal(SecurityLevel.Medium, (await g9.Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g9", DeviceCapabilities.Gateway(SecurityLevel.High)), Timeout)).PnSecurityLevel);
        await ProblemAsync(await op.PostAsJsonAsync("operator/v1/devices",
            new ProvisionBody("p8", EntityKind.Pne, PnSecurityCeiling: SecurityLevel.Low), Json), HttpStatusCode.BadRequest,
            "urn:cpns:problem:request:invalid");

        var revoked = await OkAsync<CredentialRevocationAccepted>(await op.PostAsJsonAsync("operator/v1/devices/p4/revoke", new RevokeBody("stolen"), Json));
        Assert.Equal("p4", revoked.DeviceId);
        Assert.DoesNotContain("p4", (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Select(p => p.DeviceId));

        var deleted = await OkAsync<GroupAccepted>(await op.DeleteAsync("operator/v1/groups/cinema"));
        Assert.Equal(GroupChange.Deleted, deleted.Change);
        await ProblemAsync(await op.GetAsync("operator/v1/groups/cinema"), HttpStatusCode.NotFound, "urn:cpns:problem:request:not-found");

        var statement = await OkAsync<ChargingStatement>(await op.GetAsync("operator/v1/charging/statement"));
        Assert.Equal(StatementSubject.All, statement.Subject);
        var csv = await op.GetAsync("operator/v1/charging/export?format=csv");
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("record_id,user_id,service_id", await csv.Content.ReadAsStringAsync());
        await ProblemAsync(await op.GetAsync("operator/v1/charging/export?format=xls"), HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await op.GetAsync("operator/v1/cluster"), HttpStatusCode.NotFound, "urn:cpns:problem:cluster:not-a-cluster-node");
    }

    [Fact]
    public async Task Unauthenticated_foreign_malformed_oversized_and_too_frequent_requests_are_refused_and_change_nothing()
    {
        await using var api = await StartAsync(maxBodyBytes: 64 * 1024);
        var op = api.Client("alice", ApiRole.Operator);
        var studio = api.Client("studio");
        var rival = api.Client("rival");
        await CreateCinemaAsync(op);
        await OkAsync<GroupAccepted>(await op.PutAsJsonAsync("operator/v1/groups/cinema/grants/ace:studio", new GrantBody(Privilege.Manage), Json));
        await OkAsync<ServicePublished>(await studio.PutAsJsonAsync("ace/v1/services/s-film", Film(), Json));
        await OkAsync<DeliveryView>(await studio.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-1", "s-film", Text: "hello"), Json),
            HttpStatusCode.Created);
        var groupsBefore = await op.GetStringAsync("operator/v1/groups");

        // No key, a wrong key, a key of a removed client: 401 with a challenge.
        var anonymous = await api.Anonymous().GetAsync("ace/v1/services");
        await ProblemAsync(anonymous, HttpStatusCode.Unauthorized, "urn:cpns:problem:auth:unauthenticated");
        Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        var forged = api.Anonymous();
        forged.DefaultRequestHeaders.Authorization = new("Bearer", "cpns_studio_" + new string('A', 43));
        await ProblemAsync(await forged.GetAsync("ace/v1/services"), HttpStatusCode.Unauthorized, "urn:cpns:problem:auth:unauthenticated");
        var leaving = api.Client("leaving");
        Assert.True(api.Store.Remove("leaving"));
        await ProblemAsync(await leaving.GetAsync("ace/v1/services"), HttpStatusCode.Unauthorized, "urn:cpns:problem:auth:unauthenticated");

        // An ACE is not an operator, and an operator is not an ACE.
        await ProblemAsync(await studio.PostAsJsonAsync("operator/v1/groups", new NewGroupBody("mine", DeliveryMode.Push, ["p1"]), Json),
            HttpStatusCode.Forbidden, "urn:cpns:problem:auth:forbidden");
        await ProblemAsync(await studio.GetAsync("metrics"), HttpStatusCode.Forbidden, "urn:cpns:problem:auth:forbidden");
        await ProblemAsync(await op.GetAsync("ace/v1/services"), HttpStatusCode.Forbidden, "urn:cpns:problem:auth:forbidden");

        // Another ACE's service, delivery and group are not the rival's: it sees none of them and changes none.
        Assert.Empty(await OkAsync<List<ServiceView>>(await rival.GetAsync("ace/v1/services")));
        await ProblemAsync(await rival.DeleteAsync("ace/v1/services/s-film"), HttpStatusCode.NotFound, "urn:cpns:problem:request:not-found");
        await ProblemAsync(await rival.PutAsJsonAsync("ace/v1/services/s-film", Film(groupId: null), Json), HttpStatusCode.Forbidden,
            "urn:cpns:problem:directory:not-offerer");
        await ProblemAsync(await rival.GetAsync("ace/v1/deliveries/d-1"), HttpStatusCode.NotFound, "urn:cpns:problem:request:not-found");
        await ProblemAsync(await rival.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-2", "s-film", Text: "spam"), Json),
            HttpStatusCode.Forbidden, "urn:cpns:problem:delivery:not-offerer");
        await ProblemAsync(await rival.PutAsJsonAsync("ace/v1/services/s-rival", Film(), Json), HttpStatusCode.Forbidden,
            "urn:cpns:problem:directory:not-authorized");
        Assert.Empty((await OkAsync<UsageView>(await rival.GetAsync("ace/v1/usage"))).Records);
        Assert.Empty((await OkAsync<ChargingStatement>(await rival.GetAsync("ace/v1/charging"))).Records);

        // Malformed and oversized bodies, and a duplicate delivery.
        var missing = await ProblemAsync(await op.PostAsync("operator/v1/groups", JsonBody("""{"groupId":"x"}""")), HttpStatusCode.BadRequest,
            "urn:cpns:problem:request:invalid");
        Assert.Contains("mode", missing.GetProperty("detail").GetString());
        await ProblemAsync(await op.PostAsync("operator/v1/groups", JsonBody("""{"groupId":"x","mode":"Push","members":null}""")),
            HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await op.PostAsync("operator/v1/groups", JsonBody("not json")), HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await op.PostAsync("operator/v1/groups", JsonBody("""{"groupId":"x","mode":"Sideways","members":[]}""")),
            HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await studio.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-3", "s-film", Text: "a", Content: "YQ=="), Json),
            HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await studio.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-3", "s-film", Content: "%%%"), Json),
            HttpStatusCode.BadRequest, "urn:cpns:problem:request:invalid");
        await ProblemAsync(await studio.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-1", "s-film", Text: "again"), Json),
            HttpStatusCode.Conflict, "urn:cpns:problem:delivery:duplicate");
        await ProblemAsync(await studio.PostAsJsonAsync("ace/v1/deliveries", new DeliveryBody("d-4", "s-film", Text: new string('x', 100_000)), Json),
            HttpStatusCode.RequestEntityTooLarge, "urn:cpns:problem:request:too-large");
        await ProblemAsync(await studio.PutAsJsonAsync("ace/v1/services/bad%20id", Film(), Json), HttpStatusCode.BadRequest,
            "urn:cpns:problem:request:invalid");

        // Nothing of that changed anything: the groups, the ACE's services, its one delivery and what the members received.
        Assert.Equal(groupsBefore, await op.GetStringAsync("operator/v1/groups"));
        var services = await OkAsync<List<ServiceView>>(await studio.GetAsync("ace/v1/services"));
        Assert.Equal(("s-film", 1L), (Assert.Single(services).Description.ServiceId, services[0].Version));
        Assert.Equal(1, (await Server.Delivery.Ask<DeliveryStats>(GetDeliveryStats.Instance, Timeout)).Accepted);
        Assert.Equal(["ace:studio:d-1"], (await Pnes["p1"].Ask<ReceivedContent>(new GetReceivedContent("p1"), Timeout)).Items.Select(i => i.DeliveryId));
    }

    [Fact]
    public async Task A_client_over_its_rate_gets_429_with_Retry_After_and_other_clients_are_not_slowed()
    {
        await using var api = await StartAsync(requestsPerSecond: 3);
        var busy = api.Client("busy", ApiRole.Operator);
        var other = api.Client("other", ApiRole.Operator);
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 6; i++)
            answers.Add(await busy.GetAsync("operator/v1/groups"));
        Assert.Equal(3, answers.Count(a => a.StatusCode == HttpStatusCode.OK));
        var limited = answers.First(a => a.StatusCode == HttpStatusCode.TooManyRequests);
        await ProblemAsync(limited, HttpStatusCode.TooManyRequests, "urn:cpns:problem:request:rate-limited");
        Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), limited.Headers.RetryAfter?.ToString());
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("operator/v1/groups")).StatusCode);
    }

    [Fact]
    public async Task The_OpenAPI_document_lists_every_route_and_health_is_served_without_a_key()
    {
        await using var api = await StartAsync();
        var anonymous = api.Anonymous();
        var document = JsonDocument.Parse(await anonymous.GetStringAsync("openapi/v1.json")).RootElement;
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString());
        var documented = document.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(method => $"{method.Name.ToUpperInvariant()} {path.Name}"))
            .Order().ToList();
        var mapped = api.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/ace/", StringComparison.Ordinal) ||
                        e.RoutePattern.RawText.StartsWith("/operator/", StringComparison.Ordinal))
            .SelectMany(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()!.HttpMethods
                .Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Order().ToList();
        Assert.Equal(27, mapped.Count);
        Assert.Equal(mapped, documented);
        Assert.True(document.GetProperty("components").GetProperty("schemas").TryGetProperty("DeliveryBody", out _));

        var page = await anonymous.GetAsync("docs/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("openapi/v1.json", await page.Content.ReadAsStringAsync());

        var live = JsonDocument.Parse(await anonymous.GetStringAsync("health/live")).RootElement;
        Assert.Equal("Healthy", live.GetProperty("status").GetString());
        var ready = JsonDocument.Parse(await anonymous.GetStringAsync("health/ready")).RootElement;
        Assert.Equal("Healthy", ready.GetProperty("status").GetString());
        Assert.Equal(["actor-system", "cluster-member", "journal", "registry"],
            ready.GetProperty("checks").EnumerateObject().Select(c => c.Name).Order());
        Assert.Equal("2 PN GWs, 4 PNEs registered", ready.GetProperty("checks").GetProperty("registry").GetProperty("detail").GetString());
    }
}
