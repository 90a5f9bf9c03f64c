using Cpns.Actors.Local;
using System.Xml.Linq;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Gateway;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using Cpns.Actors.Common;

namespace Cpns.Tests.Lifecycle;

/// <summary>Device capabilities (relayed, cached by hash) and device management, through the PN GW.</summary>
public sealed class DeviceFunctionTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.connections.heartbeat-interval = 200ms")
{
    private Task StartAsync() => StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });

    private Task<object> CapabilitiesAsync(string device) => Server.Capabilities.Ask<object>(new QueryCapabilities(device), Timeout);

    private Task<RelayStats> RelayStatsAsync() => Gateways["g1"].Ask<RelayStats>(GetRelayStats.Instance, Timeout);

    private async Task<DmResult> DmAsync(string device, DmOperation operation, string path, string? value = null) =>
        await Server.Dm.Ask<DmResult>(new DmCommand(device, operation, path, value), Timeout);

    [Fact]
    public async Task A_capability_query_is_relayed_once_then_served_from_the_gateways_cache_until_the_document_changes()
    {
        await StartAsync();
        var first = Assert.IsType<DeviceCapabilitiesReport>(await CapabilitiesAsync("p1"));
        Assert.False(first.FromCache);
        Assert.Equal("media-player", first.Capabilities.DeviceKind);
        Assert.Equal(["aac", "opus"], first.Capabilities.Codecs);
        Assert.Equal(CapabilityHash.Of(DeviceCapabilities.Pne()), first.Hash);
        Assert.Equal(1, (await RelayStatsAsync()).CapabilityQueriesRelayed);

        var second = Assert.IsType<DeviceCapabilitiesReport>(await CapabilitiesAsync("p1"));
        Assert.True(second.FromCache);
        Assert.Equal(first.Hash, second.Hash);
        var stats = await RelayStatsAsync();
        Assert.Equal((1L, 1L), (stats.CapabilityQueriesRelayed, stats.CapabilityQueriesFromCache));

        // The battery runs low: the next heartbeat carries a new hash, and the next query is relayed again.
        var drained = DeviceCapabilities.Pne() with { BatteryPercent = 15 };
        Pnes["p1"].Tell(new UpdateCapabilities("p1", drained));
        await AwaitAssertAsync(async () =>
        {
            var report = Assert.IsType<DeviceCapabilitiesReport>(await CapabilitiesAsync("p1"));
            Assert.Equal(15, report.Capabilities.BatteryPercent);
            Assert.Equal(CapabilityHash.Of(drained), report.Hash);
        }, Timeout);
        Assert.Equal(2, (await RelayStatsAsync()).CapabilityQueriesRelayed);
    }

    [Fact]
    public async Task A_gateways_own_document_states_the_security_level_of_its_PN()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string>(),
            pnSecurity: new Dictionary<string, SecurityLevel> { ["g1"] = SecurityLevel.Medium });
        var report = Assert.IsType<DeviceCapabilitiesReport>(await CapabilitiesAsync("g1"));
        Assert.Equal(SecurityLevel.Medium, report.Capabilities.PnSecurityLevel);
        Assert.Contains(report.Capabilities.PnTechnologies, t => t.Name == "wifi-wpa3");
        Assert.IsType<CapabilityQueryFailed>(await CapabilitiesAsync("nobody"));
    }

    [Fact]
    public async Task Get_Replace_and_Exec_travel_through_the_gateway_and_back()
    {
        await StartAsync();
        Assert.Equal((DmStatus.Ok, "p1"), Result(await DmAsync("p1", DmOperation.Get, "./DevInfo/Id")));
        Assert.Equal((DmStatus.Ok, "media-player"), Result(await DmAsync("p1", DmOperation.Get, "./DevInfo/Mod")));
        Assert.Equal((DmStatus.Ok, "g1"), Result(await DmAsync("p1", DmOperation.Get, "./CPNS/Gateway")));
        Assert.Contains("./DevInfo/Man", (await DmAsync("p1", DmOperation.Get, "./DevInfo")).Value);

        // Replace of the lifetime changes the lease at the server.
        Assert.Equal((DmStatus.Ok, "600"), Result(await DmAsync("p1", DmOperation.Replace, "./CPNS/Lifetime", "600")));
        await AwaitAssertAsync(async () =>
            Assert.Equal(600, (await Server.Registry.Ask<Lease>(new GetLease("p1"), Timeout)).LifetimeSeconds), Timeout);

        // Exec re-registers the device: a new registration.
        var before = (await Server.Registry.Ask<Lease>(new GetLease("p1"), Timeout)).RegistrationId;
        Assert.Equal(DmStatus.Ok, (await DmAsync("p1", DmOperation.Exec, "./CPNS/Reregister")).Status);
        await AwaitAssertAsync(async () =>
            Assert.NotEqual(before, (await Server.Registry.Ask<Lease>(new GetLease("p1"), Timeout)).RegistrationId), Timeout);
        Assert.True((await RelayStatsAsync()).ManagementRequestsRelayed >= 6);

        // The PN GW answers for its own tree.
        Assert.Equal((DmStatus.Ok, "g1"), Result(await DmAsync("g1", DmOperation.Get, "./DevInfo/Id")));
    }

    [Fact]
    public async Task Unknown_nodes_and_forbidden_operations_get_typed_errors_and_change_nothing()
    {
        await StartAsync();
        Assert.Equal(DmStatus.NotFound, (await DmAsync("p1", DmOperation.Get, "./DevInfo/Nope")).Status);
        Assert.Equal(DmStatus.NotAllowed, (await DmAsync("p1", DmOperation.Replace, "./DevInfo/Id", "p9")).Status);
        Assert.Equal(DmStatus.NotAllowed, (await DmAsync("p1", DmOperation.Exec, "./CPNS/Lifetime")).Status);
        Assert.Equal(DmStatus.NotAllowed, (await DmAsync("g1", DmOperation.Replace, "./DevInfo/Id", "g9")).Status);
        Assert.Equal(DmStatus.BadValue, (await DmAsync("p1", DmOperation.Replace, "./CPNS/Lifetime", "forever")).Status);
        Assert.Equal(DmStatus.Unreachable, (await DmAsync("ghost", DmOperation.Get, "./DevInfo/Id")).Status);
        Assert.Equal((DmStatus.Ok, "p1"), Result(await DmAsync("p1", DmOperation.Get, "./DevInfo/Id")));
        Assert.Equal(86400, (await Server.Registry.Ask<Lease>(new GetLease("p1"), Timeout)).LifetimeSeconds);
    }

    private static (DmStatus, string?) Result(DmResult result) => (result.Status, result.Value);

    [Fact]
    public async Task A_device_raises_a_management_alert_of_its_own_and_the_operator_reads_it()
    {
        await StartAsync();
        const string firmware = "org.openmobilealliance.dm.firmwareupdate.devicerequest";
        var answer = await Pnes["p1"].Ask<DmAlertAnswer>(new LocalRequest(new DmAlert("anyone", firmware, "./FwUpdate", "v2.1", 7)), Timeout);
        Assert.True(answer.Accepted, answer.Detail);
        Assert.Equal(("p1", 7L), (answer.DeviceId, answer.RequestId)); // raised in the PNE's own name; the application's id comes back

        var alerts = await Server.Dm.Ask<DmAlerts>(new GetDmAlerts("p1"), Timeout);
        var alert = Assert.Single(alerts.Alerts);
        Assert.Equal((answer.AlertId, firmware, "./FwUpdate", "v2.1"), (alert.AlertId, alert.AlertType, alert.Path, alert.Data));

        // Too big, or not a tree path: refused, typed and counted, and nothing kept.
        var tooBig = await Pnes["p1"].Ask<DmAlertAnswer>(new LocalRequest(new DmAlert("p1", firmware, "./FwUpdate",
            new string('x', DmAlertLog.MaxData + 1))), Timeout);
        Assert.False(tooBig.Accepted);
        Assert.Contains("at most 1024", tooBig.Detail);
        var notAPath = await Pnes["p1"].Ask<DmAlertAnswer>(new LocalRequest(new DmAlert("p1", "fault", "/etc/passwd", "")), Timeout);
        Assert.False(notAPath.Accepted);
        // Signed by p2 in p1's name, straight to the server.
        Server.Dm.Tell(SealAs("p2", new DmAlert("p1", "fault", "", "")), TestActor);
        var misnamed = Unseal<DmAlertAnswer>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal((false, "p2"), (misnamed.Accepted, misnamed.DeviceId));
        Assert.Equal(3, (await Server.Dm.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("AlertRefused"));
        Assert.Single((await Server.Dm.Ask<DmAlerts>(new GetDmAlerts("p1"), Timeout)).Alerts);
        Assert.Empty((await Server.Dm.Ask<DmAlerts>(new GetDmAlerts("p2"), Timeout)).Alerts);
    }

    [Fact]
    public async Task A_PN_GW_raises_a_management_alert_of_its_own_through_its_node_local_API()
    {
        await StartAsync();
        var answer = await Gateways["g1"].Ask<DmAlertAnswer>(new LocalRequest(new DmAlert("anyone", "fault", "./CPNS/PnSecurity",
            "wifi link lost", 9)), Timeout);
        Assert.True(answer.Accepted, answer.Detail);
        Assert.Equal(("g1", 9L), (answer.DeviceId, answer.RequestId));
        var alert = Assert.Single((await Server.Dm.Ask<DmAlerts>(new GetDmAlerts("g1"), Timeout)).Alerts);
        Assert.Equal((answer.AlertId, "fault", "./CPNS/PnSecurity", "wifi link lost"), (alert.AlertId, alert.AlertType, alert.Path, alert.Data));

        // The same checks as a PNE's: a path that is no tree path is refused, typed, and nothing more is kept.
        var refused = await Gateways["g1"].Ask<DmAlertAnswer>(new LocalRequest(new DmAlert("g1", "fault", "/etc/passwd", "")), Timeout);
        Assert.False(refused.Accepted);
        // Bare, from another process: not the PN GW's applications' word; counted, and nothing is sent.
        Gateways["g1"].Tell(new DmAlert("g1", "fault", "./CPNS/PnSecurity", "forged"), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await Gateways["g1"].Ask<SecurityCounters>(GetSecurityCounters.Instance,
            Timeout)).Rejections.GetValueOrDefault("BareRequest")), Timeout);
        Assert.Single((await Server.Dm.Ask<DmAlerts>(new GetDmAlerts("g1"), Timeout)).Alerts);
    }
}

/// <summary>Status (presence): publish, watch (allowed by the group ACLs), real changes only, coalesced; PIDF.</summary>
public sealed class StatusTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.status.coalesce = 150ms")
{
    private async Task StartAsync()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
    }

    private async Task<object> WatchAsync(string watcher, string target, IActorRef subscriber) =>
        await Server.Status.Ask<object>(new WatchStatus(watcher, target, subscriber), Timeout);

    [Fact]
    public async Task A_watcher_hears_exactly_one_notification_per_real_change()
    {
        await StartAsync();
        var watcher = CreateTestProbe();
        var accepted = Assert.IsType<WatchAccepted>(await WatchAsync("p1", "p2", watcher.Ref));
        Assert.Equal(new EntityStatus("p2", Presence.Online, true, ""), Assert.Single(accepted.Current));

        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "in a call")));
        var changed = await watcher.ExpectMsgAsync<StatusChanged>(Timeout);
        Assert.Equal(new EntityStatus("p2", Presence.Busy, true, "in a call"), changed.Status);

        var before = await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout);
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "in a call"))); // the same again: no change
        await AwaitStatsAsync(stats => stats.Unchanged > before.Unchanged);

        // A burst within the window is coalesced to its latest state.
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Online, "")));
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "again")));
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Online, "free")));
        Assert.Equal(new EntityStatus("p2", Presence.Online, true, "free"), (await watcher.ExpectMsgAsync<StatusChanged>(Timeout)).Status);
        Assert.Equal(before.Sent + 1, (await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout)).Sent);

        // A burst that ends where it began is no change at all: the window closes without a notification.
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "x")));
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Online, "free")));
        await AwaitStatsAsync(stats => stats.Suppressed == before.Suppressed + 1);
        Assert.Equal(before.Sent + 1, (await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout)).Sent);
        await watcher.ExpectNoMsgAsync(TimeSpan.Zero); // what the windows sent is in the probe already
    }

    private Task AwaitStatsAsync(Func<StatusStats, bool> reached) =>
        AwaitConditionAsync(async () => reached(await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout)), Timeout);

    [Fact]
    public async Task A_device_subscribes_to_anothers_status_over_CPNS_and_hears_its_changes_until_it_unsubscribes()
    {
        await StartAsync();
        var application = CreateTestProbe();
        Pnes["p1"].Tell(new LocalRequest(new SubscribeStatus("whoever", "p2")), application.Ref);
        var accepted = await application.ExpectMsgAsync<WatchAccepted>(Timeout);
        Assert.Equal(("p1", "p2"), (accepted.WatcherId, accepted.Target)); // the PNE subscribes in its own name
        Assert.Equal(new EntityStatus("p2", Presence.Online, true, ""), Assert.Single(accepted.Current));

        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "in a call")));
        var changed = await application.ExpectMsgAsync<StatusChanged>(Timeout);
        Assert.Equal(new EntityStatus("p2", Presence.Busy, true, "in a call"), changed.Status);
        Assert.Equal([changed.Status], (await Pnes["p1"].Ask<WatchedStatuses>(GetWatchedStatuses.Instance, Timeout)).Statuses);

        // p3 shares no group with p2: refused, typed, over CPNS as well.
        var stranger = CreateTestProbe();
        Pnes["p3"].Tell(new LocalRequest(new SubscribeStatus("p3", "p2")), stranger.Ref);
        Assert.Equal(GroupError.NotAuthorized, (await stranger.ExpectMsgAsync<WatchRejected>(Timeout)).Error);

        var before = await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout);
        Pnes["p1"].Tell(new LocalRequest(new UnsubscribeStatus("p1", "p2")), application.Ref);
        await AwaitStatsAsync(stats => stats.Subscriptions == before.Subscriptions - 1);
    }

    [Fact]
    public async Task A_bare_subscription_is_not_the_devices_and_one_in_another_name_is_refused()
    {
        await StartAsync();
        var before = await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout);
        // From another process, unsigned: the PNE takes no request of its applications that way.
        Pnes["p1"].Tell(new SubscribeStatus("p1", "p2"), TestActor);
        // Signed by p3 but naming p1: the server's status function takes none of it.
        Server.Status.Tell(SealAs("p3", new SubscribeStatus("p1", "p2")), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(1,
            (await Pnes["p1"].Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("BareRequest")), Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1,
            (await Server.Status.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("SenderMismatch")), Timeout);
        Pnes["p1"].Tell(new LocalRequest(new SubscribeStatus("p1", "p1")), TestActor); // watching itself: always allowed
        Assert.Equal("p1", (await ExpectMsgAsync<WatchAccepted>(Timeout)).Target);
        Assert.Equal(before.Subscriptions + 1, (await Server.Status.Ask<StatusStats>(GetStatusStats.Instance, Timeout)).Subscriptions);
    }

    [Fact]
    public async Task Watching_is_allowed_by_the_group_ACLs_and_works_for_a_whole_PN()
    {
        await StartAsync();
        var stranger = CreateTestProbe();
        var rejected = Assert.IsType<WatchRejected>(await WatchAsync("p3", "p2", stranger.Ref));
        Assert.Equal(GroupError.NotAuthorized, rejected.Error);

        var neighbour = CreateTestProbe();
        var pn = Assert.IsType<WatchAccepted>(await WatchAsync("p2", "pn:g1", neighbour.Ref));
        Assert.Equal(["g1", "p1", "p2"], pn.Current.Select(s => s.DeviceId).Order());
        Pnes["p1"].Tell(new LocalRequest(new PublishStatus("p1", Presence.Busy, "")));
        Assert.Equal("p1", (await neighbour.ExpectMsgAsync<StatusChanged>(Timeout)).Status.DeviceId);
        await stranger.ExpectNoMsgAsync(TimeSpan.Zero); // the window that told the neighbour told no one else
    }

    [Fact]
    public async Task Reachability_and_deregistration_show_in_the_status()
    {
        await StartAsync();
        var watcher = CreateTestProbe();
        await WatchAsync("operator", "p2", watcher.Ref);
        Pnes["p2"].Tell(new Sleep("p2"));
        Assert.False((await watcher.ExpectMsgAsync<StatusChanged>(Timeout)).Status.Reachable);
        Pnes["p2"].Tell(new Wake("p2"));
        Assert.True((await watcher.ExpectMsgAsync<StatusChanged>(Timeout)).Status.Reachable);
        Pnes["p2"].Tell(new DeregisterDevice("p2"));
        var gone = (await watcher.ExpectMsgAsync<StatusChanged>(Timeout)).Status;
        Assert.Equal((Presence.Offline, false), (gone.Presence, gone.Reachable));
    }

    [Fact]
    public async Task Status_renders_as_a_PIDF_document()
    {
        await StartAsync();
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "driving")));
        await AwaitAssertAsync(async () =>
            Assert.Equal(Presence.Busy, (await Server.Status.Ask<EntityStatus>(new GetStatus("p2"), Timeout)).Presence), Timeout);

        var pidf = await Server.Status.Ask<PidfDocument>(new GetPidf("p2"), Timeout);
        var document = XDocument.Parse(pidf.Xml);
        Assert.Equal(Pidf.Presence + "presence", document.Root!.Name);
        Assert.Equal("pres:p2@cpns", document.Root.Attribute("entity")!.Value);
        var tuple = document.Root.Element(Pidf.Presence + "tuple")!;
        Assert.Equal("open", tuple.Element(Pidf.Presence + "status")!.Element(Pidf.Presence + "basic")!.Value);
        Assert.Equal("driving", tuple.Element(Pidf.Presence + "note")!.Value);
        Assert.NotNull(document.Root.Descendants(Pidf.Rpid + "busy").SingleOrDefault());
        Assert.StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", pidf.Xml);

        var offline = XDocument.Parse((await Server.Status.Ask<PidfDocument>(new GetPidf("ghost"), Timeout)).Xml);
        Assert.Equal("closed", offline.Root!.Descendants(Pidf.Presence + "basic").Single().Value);
    }
}

/// <summary>Status after a server restart: the PN GWs notice at their next heartbeat and register their PNs again.</summary>
public sealed class StatusRestartTests(ITestOutputHelper output) : CpnsTestKit(output, """
    cpns.status.coalesce = 150ms
    cpns.connections.heartbeat-interval = 1s
    cpns.connections.restart-spread = 1s
    """)
{
    private async Task StartAsync()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
    }

    [Fact]
    public async Task A_device_subscribed_over_CPNS_is_told_the_current_statuses_again_after_the_server_restarts()
    {
        await StartAsync();
        var application = CreateTestProbe();
        Pnes["p1"].Tell(new LocalRequest(new SubscribeStatus("p1", "p2")), application.Ref);
        await application.ExpectMsgAsync<WatchAccepted>(Timeout);
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Busy, "in a call")));
        Assert.Equal(Presence.Busy, (await application.ExpectMsgAsync<StatusChanged>(Timeout)).Status.Presence);

        // Status is soft state: the restarted server has none, and no subscription. Registered again, p1 subscribes
        // again in its applications' stead, and they hear the status as the server now has it (not the stale "busy").
        await RestartServerAsync();
        var renewed = await application.ExpectMsgAsync<WatchAccepted>(Dilated(TimeSpan.FromSeconds(30)));
        Assert.Equal(("p1", "p2"), (renewed.WatcherId, renewed.Target));
        Assert.Equal(Presence.Online, Assert.Single(renewed.Current).Presence);
        Assert.Equal(renewed.Current, (await Pnes["p1"].Ask<WatchedStatuses>(GetWatchedStatuses.Instance, Timeout)).Statuses);

        // And the subscription works again.
        Pnes["p2"].Tell(new LocalRequest(new PublishStatus("p2", Presence.Offline, "gone")));
        Assert.Equal(new EntityStatus("p2", Presence.Offline, true, "gone"),
            (await application.FishForMessageAsync<StatusChanged>(_ => true, Timeout)).Status);
    }
}
