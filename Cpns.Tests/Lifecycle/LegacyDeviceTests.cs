using System.Text;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// Devices without CPNS features (seed §5.3.1.7: service management "can also be deployed in the PN GW for entities
/// without CPNS features"): the PN GW runs a PNE for such a device, and passes on what it opens over the PN's own link.
/// </summary>
public sealed class LegacyDeviceTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static readonly PnTechnology Hdmi = new("hdmi-cec", SecurityLevel.Medium);

    private async Task<IActorRef> AdoptAsync(string id, IActorRef device, string gateway = "g1")
    {
        var identity = Identities[id] = EntityIdentity.Generate(id, EntityKind.Pne);
        var adopted = await Gateways[gateway].Ask<object>(
            new AdoptLegacyDevice(identity, "tv", Hdmi, EnrolmentTokenFor(id, EntityKind.Pne), device), Timeout);
        var representative = Assert.IsType<LegacyDeviceAdopted>(adopted).Representative;
        Pnes[id] = representative;
        await AwaitRegisteredAsync([representative]);
        return representative;
    }

    [Fact]
    public async Task A_PN_GW_represents_a_device_without_CPNS_its_services_groups_and_content_until_it_leaves()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g2" });
        var tv = CreateTestProbe();
        var representative = await AdoptAsync("tv1", tv.Ref);

        // The server sees a PNE behind g1 whose capabilities say it is represented, not a CPNS device itself.
        var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.Equal("g1", inventory.Pnes.Single(p => p.DeviceId == "tv1").GatewayId);
        var report = Assert.IsType<DeviceCapabilitiesReport>(await Server.Capabilities.Ask<object>(new QueryCapabilities("tv1"), Timeout));
        Assert.Equal("tv", report.Capabilities.DeviceKind);
        Assert.Equal([DeviceCapabilities.RepresentedByGateway], report.Capabilities.Functions);
        Assert.Equal(["tv1"], (await Gateways["g1"].Ask<LegacyDevices>(GetLegacyDevices.Instance, Timeout)).DeviceIds);

        // Its service is published for it, and a PNE in another PN finds it.
        var service = new ServiceDescription("s-tv1", "living-room screen", "tv1", "display", ["screen"], new Dictionary<string, string>(),
            [], 0, Privilege.View, null, 0);
        Assert.IsType<ServicePublished>(await representative.Ask<object>(new LocalRequest(new PublishService(service)), Timeout));
        var found = Assert.IsType<SearchResult>(await Pnes["p1"].Ask<object>(
            new LocalRequest(new SearchServices("p1", ["screen"], new Dictionary<string, string>(), 0, 10)), Timeout));
        Assert.Equal("tv1", found.Hits.Single().Description.OffererId);

        // Its group key stays in the PN GW; the content it opens there reaches the device over the PN's own link.
        Server.Smf.Tell(new LocalRequest(new CreateGroup("living-room", "p1", DeliveryMode.Push, ["p1", "tv1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(representative, "living-room")).CurrentEpoch), Timeout);
        Assert.IsType<ContentAccepted>(await Pnes["p1"].Ask<object>(
            new SendContent("d-1", "s-film", "living-room", Octets.Own("play film 3"u8.ToArray())), Timeout));
        var shown = await tv.ExpectMsgAsync<LegacyContent>(Timeout);
        Assert.Equal(("d-1", "living-room", "p1", "play film 3"),
            (shown.DeliveryId, shown.GroupId, shown.SenderId, Encoding.UTF8.GetString(shown.Payload.Span)));

        // The device leaves the PN: the PN GW deregisters its PNE, which leaves its group (rekeyed without it).
        Sys.Stop(tv.Ref);
        await AwaitAssertAsync(async () =>
            Assert.DoesNotContain((await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes, p => p.DeviceId == "tv1"), Timeout);
        await AwaitAssertAsync(async () =>
        {
            var group = await Server.Smf.Ask<GroupState>(new GetGroup("living-room"), Timeout);
            Assert.Equal(["p1"], group.Members);
            Assert.Equal(2L, group.Epoch);
        }, Timeout);
        await AwaitAssertAsync(async () =>
            Assert.Empty((await Gateways["g1"].Ask<LegacyDevices>(GetLegacyDevices.Instance, Timeout)).DeviceIds), Timeout);
    }

    [Fact]
    public async Task Adoptions_a_PN_GW_cannot_take_are_refused_with_the_reason()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string>());
        var tv = CreateTestProbe();
        await AdoptAsync("tv1", tv.Ref);

        async Task<string> RefusedAsync(EntityIdentity identity) =>
            Assert.IsType<LegacyDeviceRefused>(await Gateways["g1"].Ask<object>(
                new AdoptLegacyDevice(identity, "tv", Hdmi, null, tv.Ref), Timeout)).Reason;

        Assert.Equal("tv1 is already represented by g1", await RefusedAsync(EntityIdentity.Generate("tv1", EntityKind.Pne)));
        Assert.Equal("tv2 is a PnGateway: a represented device is a PNE", await RefusedAsync(EntityIdentity.Generate("tv2", EntityKind.PnGateway)));
        Assert.Equal(["tv1"], (await Gateways["g1"].Ask<LegacyDevices>(GetLegacyDevices.Instance, Timeout)).DeviceIds);

        // One the operator never provisioned is refused by the server like any PNE without enrolment: it stays unregistered.
        using var refusals = new MetricRecorder("cpns.registrations.refused", "reason");
        var stranger = Assert.IsType<LegacyDeviceAdopted>(await Gateways["g1"].Ask<object>(
            new AdoptLegacyDevice(EntityIdentity.Generate("tv3", EntityKind.Pne), "tv", Hdmi, null, CreateTestProbe().Ref), Timeout));
        await AwaitConditionAsync(() => Task.FromResult(refusals[nameof(AuthFailure.NotProvisioned)] > 0), Timeout);
        Assert.False((await stranger.Representative.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).Registered);
    }
}
