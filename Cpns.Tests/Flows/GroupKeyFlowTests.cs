using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Flows;

/// <summary>The pull and push Group Key flows of seed Appendix C, step by step, and the key lifecycle.</summary>
public sealed class GroupKeyFlowTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static readonly (int, string, string)[] ServerSteps1To6 =
    [
        (1, "server/smf", "server/cskmf"),
        (2, "server/cskmf", "server/cskmf/osg"),
        (3, "server/cskmf/osg", "server/kmc"),
        (4, "server/kmc", "server/cskmf/osg"),
        (5, "server/cskmf/osg", "server/cskmf"),
        (6, "server/cskmf", "server/smf"),
    ];

    private Task StartOneGatewayOnePneAsync() =>
        StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });

    [Fact]
    public async Task Pull_flow_runs_steps_1_to_11_between_the_named_actors_then_continues_into_the_PN()
    {
        await StartOneGatewayOnePneAsync();
        var flow = new FlowRecorder(this);

        Server.Smf.Tell(new LocalRequest(new CreateGroup("music", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        var accepted = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal(1, accepted.Epoch);

        var steps = await flow.UntilAsync(s => s.Any(x => x is { Leg: FlowLeg.GatewayToPne, Step: 11 }), Timeout);
        Assert.All(steps, s => Assert.Equal(("music", 1L, FlowKind.Pull), (s.GroupId, s.Epoch, s.Kind)));

        var serverToGateway = steps.Where(s => s.Leg == FlowLeg.ServerToGateway);
        Assert.Equal(ServerSteps1To6.Concat(
        [
            (7, "server/smf", "gateway-g1/smf"),
            (8, "gateway-g1/smf", "gateway-g1/cskmf/seca"),
            (9, "gateway-g1/cskmf/seca", "server/cskmf"),
            (10, "server/cskmf", "gateway-g1/cskmf/seca"),
            (11, "gateway-g1/cskmf", "gateway-g1/smf"),
        ]), FlowRecorder.Shape(serverToGateway));

        var intoPn = steps.Where(s => s.Leg == FlowLeg.GatewayToPne);
        Assert.Equal(
        [
            (7, "gateway-g1/smf", "pne-p1/smf"),
            (8, "pne-p1/smf", "pne-p1/cskmf/seca"),
            (9, "pne-p1/cskmf/seca", "gateway-g1/cskmf"),
            (10, "gateway-g1/cskmf", "pne-p1/cskmf/seca"),
            (11, "pne-p1/cskmf", "pne-p1/smf"),
        ], FlowRecorder.Shape(intoPn));

        // The PN leg only starts once the PN GW holds the key.
        Assert.True(steps.ToList().FindIndex(s => s is { Leg: FlowLeg.GatewayToPne, Step: 7 }) >
                    steps.ToList().FindIndex(s => s is { Leg: FlowLeg.ServerToGateway, Step: 11 }));
    }

    [Fact]
    public async Task Push_flow_runs_steps_1_to_8_between_the_named_actors_then_continues_into_the_PN()
    {
        await StartOneGatewayOnePneAsync();
        var flow = new FlowRecorder(this);

        Server.Smf.Tell(new LocalRequest(new CreateGroup("alerts", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);

        var steps = await flow.UntilAsync(s => s.Any(x => x is { Leg: FlowLeg.GatewayToPne, Step: 8 }), Timeout);
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));
        Assert.All(flow.Steps, s => Assert.Equal(("alerts", 1L, FlowKind.Push), (s.GroupId, s.Epoch, s.Kind)));

        Assert.Equal(ServerSteps1To6.Concat(
        [
            (7, "server/smf", "gateway-g1/smf"),
            (8, "server/cskmf", "gateway-g1/cskmf"),
        ]), FlowRecorder.Shape(flow.Steps.Where(s => s.Leg == FlowLeg.ServerToGateway)));

        Assert.Equal(
        [
            (7, "gateway-g1/smf", "pne-p1/smf"),
            (8, "gateway-g1/cskmf", "pne-p1/cskmf"),
        ], FlowRecorder.Shape(flow.Steps.Where(s => s.Leg == FlowLeg.GatewayToPne)));
    }

    [Fact]
    public async Task A_restarted_PN_GW_CSKMF_keeps_its_SECA_and_its_SMF_still_reaches_it()
    {
        await StartOneGatewayOnePneAsync();
        var cskmf = await Sys.ActorSelection("/user/gateway-g1/cskmf").ResolveOne(Timeout);
        var seca = await Sys.ActorSelection("/user/gateway-g1/cskmf/seca").ResolveOne(Timeout);
        ((IInternalActorRef)cskmf).Restart(new InvalidOperationException("restarted by the test"));
        await AwaitAssertAsync(async () => Assert.NotNull(await cskmf.Ask<object>(GetSecurityCounters.Instance, Timeout)), Timeout);
        Assert.Equal(seca, await Sys.ActorSelection("/user/gateway-g1/cskmf/seca").ResolveOne(Timeout)); // same actor, same uid

        var flow = new FlowRecorder(this);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("music", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);

        // The SMF was introduced to the SECA once, before the restart; its step 8 still reaches the SECA, which pulls.
        var steps = await flow.UntilAsync(s => s.Any(x => x is { Leg: FlowLeg.ServerToGateway, Step: 9 }), Timeout);
        Assert.Equal(
        [
            (7, "server/smf", "gateway-g1/smf"),
            (8, "gateway-g1/smf", "gateway-g1/cskmf/seca"),
            (9, "gateway-g1/cskmf/seca", "server/cskmf"),
        ], FlowRecorder.Shape(steps.Where(s => s is { Leg: FlowLeg.ServerToGateway, Step: >= 7 and <= 9 })));
    }

    [Theory]
    [InlineData(DeliveryMode.Pull)]
    [InlineData(DeliveryMode.Push)]
    public async Task A_PNE_member_holds_exactly_the_key_bytes_of_the_servers_current_epoch(DeliveryMode mode)
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g2", ["p3"] = "g2" });

        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", mode, ["p1", "p2", "p3"])), TestActor);
        var accepted = await ExpectMsgAsync<GroupAccepted>(Timeout);

        var serverKey = await ExportedKeyAsync(Server.Cskmf, "grp", accepted.Epoch);
        Assert.Equal(32, serverKey.Length);
        foreach (var member in new[] { "p1", "p2", "p3" })
        {
            await AwaitAssertAsync(async () =>
                Assert.Equal(accepted.Epoch, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
            Assert.Equal(serverKey, await ExportedKeyAsync(Pnes[member], "grp", accepted.Epoch));
        }
    }

    [Theory]
    [InlineData(DeliveryMode.Pull)]
    [InlineData(DeliveryMode.Push)]
    public async Task A_member_added_later_gets_the_new_epoch_and_never_an_earlier_one(DeliveryMode mode)
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        var installs = CreateTestProbe();
        Sys.EventStream.Subscribe(installs.Ref, typeof(KeyInstalled));

        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", mode, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        var added = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal((GroupChange.MemberAdded, 2L), (added.Change, added.Epoch));
        Assert.Equal(["p1", "p2"], added.Members);

        await AwaitAssertAsync(async () =>
        {
            Assert.Equal(2, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch);
            Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch);
        }, Timeout);

        var p2State = await KeyStateAsync(Pnes["p2"], "grp");
        Assert.Equal([2L], p2State.Epochs);
        var p2Installs = installs.ReceiveWhile(TimeSpan.FromMilliseconds(200), m => (KeyInstalled)m)
            .Where(i => i.HolderId == "p2").ToList();
        Assert.All(p2Installs, i => Assert.Equal(2, i.Epoch));

        // And p2 cannot get epoch 1 by asking for it (signed as p2): the PN GW refuses, p2 was not a member then.
        var gatewayCskmf = await Sys.ActorSelection("/user/gateway-g1/cskmf").ResolveOne(Timeout);
        gatewayCskmf.Tell(SealAs("p2", new GroupKeyRequest("grp", 1, "p2")), TestActor);
        var refused = await ExpectSealedAsync<GroupKeyRefused>();
        Assert.Equal(KeyError.NotAuthorized, refused.Error);
    }

    [Theory]
    [InlineData(DeliveryMode.Pull)]
    [InlineData(DeliveryMode.Push)]
    public async Task A_removed_members_SECA_does_not_receive_the_next_epoch(DeliveryMode mode)
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", mode, ["p1", "p2", "p3"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch), Timeout);

        var flow = new FlowRecorder(this);
        Server.Smf.Tell(new LocalRequest(new RemoveMember("grp", "p1", "p2")), TestActor);
        var removed = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal((GroupChange.MemberRemoved, 2L), (removed.Change, removed.Epoch));

        await AwaitAssertAsync(async () =>
        {
            Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch);
            Assert.Equal(2, (await KeyStateAsync(Pnes["p3"], "grp")).CurrentEpoch);
        }, Timeout);
        await flow.DrainAsync(Dilated(TimeSpan.FromMilliseconds(300)));

        Assert.DoesNotContain(flow.Steps, s => s.Epoch == 2 && (s.To.StartsWith("pne-p2/", StringComparison.Ordinal) ||
                                                               s.From.StartsWith("pne-p2/", StringComparison.Ordinal)));
        var p2 = await KeyStateAsync(Pnes["p2"], "grp");
        Assert.Null(p2.CurrentEpoch);
        Assert.Empty(p2.Epochs);
    }

    [Theory]
    [InlineData(DeliveryMode.Pull)]
    [InlineData(DeliveryMode.Push)]
    public async Task Deleting_the_group_revokes_its_key_at_every_member(DeliveryMode mode)
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", mode, ["p1", "p2", "g2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var holder in new[] { Pnes["p1"], Pnes["p2"], Gateways["g1"], Gateways["g2"] })
            await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(holder, "grp")).CurrentEpoch), Timeout);

        var flow = new FlowRecorder(this);
        Server.Smf.Tell(new LocalRequest(new DeleteGroup("grp", "p1")), TestActor);
        var deleted = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal(GroupChange.Deleted, deleted.Change);

        await flow.UntilAsync(s => s.Count(x => x is { Kind: FlowKind.Revoke, Leg: FlowLeg.GatewayToPne, Step: 6 }) == 2, Timeout);
        Assert.Equal(
        [
            (1, "server/smf", "server/cskmf"),
            (2, "server/cskmf", "server/cskmf/osg"),
            (3, "server/cskmf/osg", "server/cskmf"),
            (4, "server/cskmf", "server/smf"),
        ], FlowRecorder.Shape(flow.Steps.Where(s => s.Leg == FlowLeg.ServerToGateway && s.Step <= 4)));

        foreach (var holder in new[] { Pnes["p1"], Pnes["p2"], Gateways["g1"], Gateways["g2"] })
        {
            await AwaitAssertAsync(async () =>
            {
                var state = await KeyStateAsync(holder, "grp");
                Assert.True(state.Revoked, $"{state.HolderId} still holds a live key");
                Assert.Empty(state.Epochs);
            }, Timeout);
        }

        var server = await KeyStateAsync(Server.Cskmf, "grp");
        Assert.True(server.Revoked);
        Assert.Empty(server.Epochs);
        Server.Smf.Tell(new GetGroup("grp"), TestActor);
        Assert.False((await ExpectMsgAsync<GroupState>(Timeout)).Exists);
    }

    [Fact]
    public async Task Group_requests_with_bad_input_get_typed_errors_and_change_nothing()
    {
        await StartOneGatewayOnePneAsync();
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "nobody"])), TestActor);
        Assert.Equal(GroupError.UnknownMember, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);

        Server.Smf.Tell(new LocalRequest(new AddMember("none", "p1", "p1")), TestActor);
        Assert.Equal(GroupError.UnknownGroup, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);

        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(GroupError.GroupExists, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);
        Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p1")), TestActor);
        Assert.Equal(GroupError.AlreadyMember, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);
        Server.Smf.Tell(new LocalRequest(new RemoveMember("grp", "p1", "g1")), TestActor);
        Assert.Equal(GroupError.NotMember, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);

        Server.Smf.Tell(new GetGroup("grp"), TestActor);
        var state = await ExpectMsgAsync<GroupState>(Timeout);
        Assert.Equal(1, state.Epoch);
        Assert.Equal(["p1"], state.Members);
    }

    [Fact]
    public async Task Changes_to_one_group_are_applied_in_order_and_each_gets_its_own_epoch()
    {
        await StartNetworkAsync(["g1"], Enumerable.Range(1, 6).ToDictionary(i => $"p{i}", _ => "g1"));
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        for (var i = 2; i <= 6; i++)
            Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", $"p{i}")), TestActor);
        Server.Smf.Tell(new LocalRequest(new RemoveMember("grp", "p1", "p3")), TestActor);

        var epochs = new List<long>();
        for (var i = 0; i < 7; i++)
            epochs.Add((await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7], epochs);

        foreach (var member in new[] { "p1", "p2", "p4", "p5", "p6" })
            await AwaitAssertAsync(async () => Assert.Equal(7, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
        // The removed member hears of its removal on its own path: it drops every epoch of the group.
        await AwaitAssertAsync(async () => Assert.Empty((await KeyStateAsync(Pnes["p3"], "grp")).Epochs), Timeout);
    }

    [Fact]
    public async Task A_PN_GW_behind_on_a_burst_of_changes_carries_only_the_newest_epoch_into_its_PN()
    {
        await StartNetworkAsync(["g1"], Enumerable.Range(1, 3).ToDictionary(i => $"p{i}", _ => "g1"));
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        // The PN GW's SMF is held while two changes reach it: their notices wait in its mailbox, one behind the other.
        var flow = new FlowRecorder(this);
        await WhileHeldAsync(await Sys.ActorSelection("/user/gateway-g1/smf").ResolveOne(Timeout), async smf =>
        {
            Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
            Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p3")), TestActor);
            Assert.Equal(2, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
            Assert.Equal(3, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
            await flow.UntilAsync(s => s.Any(x => x is { Leg: FlowLeg.ServerToGateway, Step: 7, Epoch: 3 }), Timeout);
            await AwaitConditionAsync(() => Task.FromResult(smf.NumberOfMessages >= 2), Timeout);
        });

        await flow.UntilAsync(s => s.Count(x => x is { Leg: FlowLeg.GatewayToPne, Step: 8, Epoch: 3 }) == 3, Timeout);
        Assert.Equal(
        [
            (7, "gateway-g1/smf", "pne-p1/smf"), (7, "gateway-g1/smf", "pne-p2/smf"), (7, "gateway-g1/smf", "pne-p3/smf"),
            (8, "gateway-g1/cskmf", "pne-p1/cskmf"), (8, "gateway-g1/cskmf", "pne-p2/cskmf"), (8, "gateway-g1/cskmf", "pne-p3/cskmf"),
        ], FlowRecorder.Shape(flow.Steps.Where(x => x.Leg == FlowLeg.GatewayToPne)).Order());
        Assert.All(flow.Steps.Where(x => x.Leg == FlowLeg.GatewayToPne), x => Assert.Equal(3, x.Epoch)); // epoch 2 never went in
        foreach (var member in new[] { "p1", "p2", "p3" })
            await AwaitAssertAsync(async () => Assert.Equal(3, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
    }
}
