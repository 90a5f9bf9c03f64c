using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Services;

/// <summary>Service management: the way a service is performed is chosen from the consuming PNE's capabilities.</summary>
public sealed class NegotiationTests(ITestOutputHelper output)
    : CpnsTestKit(output, "cpns.connections.heartbeat-interval = 200ms")
{
    private static ServiceDescription Video(string id = "s-video", string? group = null, Privilege privilege = Privilege.View) =>
        new(id, "Film channel", "ace:studio", "video-stream", ["film"],
            new Dictionary<string, string> { ["maxBitrateKbps"] = "4000" }, ["h265", "h264"], 1000, privilege, group, 0);

    private async Task StartAsync()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g1", ["p4"] = "g1" });
        Assert.IsType<ServicePublished>(await Server.Directory.Ask<object>(new LocalRequest(new PublishService(Video())), Timeout));
        await SetCapabilitiesAsync("p1", ["vp9", "h264"], 6000);
        await SetCapabilitiesAsync("p2", ["h264"], 500);
        await SetCapabilitiesAsync("p3", ["vp8", "aac"], 8000);
    }

    private async Task SetCapabilitiesAsync(string pne, string[] codecs, int maxBitrate)
    {
        var capabilities = DeviceCapabilities.Pne() with { Codecs = codecs, MaxBitrateKbps = maxBitrate };
        Pnes[pne].Tell(new UpdateCapabilities(pne, capabilities));
        await AwaitAssertAsync(async () =>
        {
            var report = Assert.IsType<DeviceCapabilitiesReport>(await Server.Capabilities.Ask<object>(new QueryCapabilities(pne), Timeout));
            Assert.Equal(codecs, report.Capabilities.Codecs);
        }, Timeout);
    }

    private async Task<object> NegotiateAsync(string serviceId, string consumer) =>
        await Server.Directory.Ask<object>(new LocalRequest(new NegotiateService(serviceId, consumer)), Timeout);

    [Fact]
    public async Task The_plan_matches_the_consumers_capabilities()
    {
        await StartAsync();
        // The service's first codec the device plays, at the highest bitrate both allow (the service caps at 4000).
        Assert.Equal(new ServicePlan("s-video", "p1", "h264", 4000), await NegotiateAsync("s-video", "p1"));

        await SetCapabilitiesAsync("p1", ["h265", "h264"], 2500);
        Assert.Equal(new ServicePlan("s-video", "p1", "h265", 2500), await NegotiateAsync("s-video", "p1"));

        // A PNE negotiates for itself through its PN GW, signed.
        Pnes["p1"].Tell(new LocalRequest(new NegotiateService("s-video", "p1")), TestActor);
        Assert.Equal(new ServicePlan("s-video", "p1", "h265", 2500), await ExpectMsgAsync<ServicePlan>(Timeout));
    }

    [Fact]
    public async Task No_fit_gives_a_typed_refusal()
    {
        await StartAsync();
        var slow = Assert.IsType<ServiceRefused>(await NegotiateAsync("s-video", "p2"));
        Assert.Equal(RefusalReason.BitrateTooLow, slow.Reason);
        Assert.Contains("1000 kbps", slow.Detail);
        Assert.Equal(RefusalReason.NoCommonCodec, Assert.IsType<ServiceRefused>(await NegotiateAsync("s-video", "p3")).Reason);
        Assert.Equal(RefusalReason.UnknownService, Assert.IsType<ServiceRefused>(await NegotiateAsync("s-nothing", "p1")).Reason);
        Assert.Equal(RefusalReason.UnknownConsumer, Assert.IsType<ServiceRefused>(await NegotiateAsync("s-video", "ghost")).Reason);

        // A PNE cannot negotiate in another's name.
        Pnes["p1"].Tell(new LocalRequest(new NegotiateService("s-video", "p2")), TestActor);
        Assert.Equal(RefusalReason.NotAuthorized, (await ExpectMsgAsync<ServiceRefused>(Timeout)).Reason);
    }

    [Fact]
    public async Task A_service_bound_to_a_group_is_refused_to_consumers_without_the_privilege()
    {
        await StartAsync();
        Server.Smf.Tell(new LocalRequest(new CreateGroup("club", "operator", DeliveryMode.Pull, ["p1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.IsType<ServicePublished>(await Server.Directory.Ask<object>(
            new LocalRequest(new PublishService(Video("s-club", "club", Privilege.Operate))), Timeout));

        Assert.IsType<ServicePlan>(await NegotiateAsync("s-club", "p1"));
        Assert.Equal(RefusalReason.NotAuthorized, Assert.IsType<ServiceRefused>(await NegotiateAsync("s-club", "p4")).Reason);
    }
}
