using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Signed requests from entities to the server's SMF and CSKMF: bad envelopes and unauthorized requests get a
/// typed answer, are counted, and change nothing.
/// </summary>
public sealed class AuthorizationTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private Task StartAsync() => StartNetworkAsync(["g1", "g2"],
        new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });

    private async Task<object> AsPneAsync(string pne, ICpnsMessage request)
    {
        Pnes[pne].Tell(new LocalRequest(request), TestActor);
        return await ExpectMsgAsync<object>(Timeout);
    }

    private async Task<GroupState> GroupAsync(string groupId) => await Server.Smf.Ask<GroupState>(new GetGroup(groupId), Timeout);

    private async Task<long> CounterAsync(IActorRef actor, EnvelopeRejection rejection) =>
        (await actor.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault(rejection.ToString());

    [Fact]
    public async Task A_PNE_creates_a_group_with_a_signed_request_relayed_by_its_gateway()
    {
        await StartAsync();
        var accepted = Assert.IsType<GroupAccepted>(await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p3"])));
        Assert.Equal(1, accepted.Epoch);
        var state = await GroupAsync("grp");
        Assert.Contains(new AclEntry("p1", Privilege.Administer), state.Acl!);
        Assert.Contains(new AclEntry("p3", Privilege.Operate), state.Acl!);
    }

    [Fact]
    public async Task A_request_naming_someone_else_as_requester_is_refused()
    {
        await StartAsync();
        var rejected = Assert.IsType<GroupRejected>(await AsPneAsync("p2", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])));
        Assert.Equal(GroupError.NotAuthorized, rejected.Error);
        Assert.False((await GroupAsync("grp")).Exists);
    }

    [Fact]
    public async Task An_unauthorized_join_is_refused_and_nothing_changes()
    {
        await StartAsync();
        await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"]));

        var selfJoin = Assert.IsType<GroupRejected>(await AsPneAsync("p2", new AddMember("grp", "p2", "p2")));
        Assert.Equal(GroupError.NotAuthorized, selfJoin.Error);
        var state = await GroupAsync("grp");
        Assert.Equal(1L, state.Epoch);
        Assert.Equal(["p1"], state.Members);
        Assert.Empty((await KeyStateAsync(Pnes["p2"], "grp")).Epochs);

        // An Operate member may not add others either; once granted Manage it may.
        await AsPneAsync("p1", new AddMember("grp", "p1", "p2"));
        Assert.Equal(GroupError.NotAuthorized,
            Assert.IsType<GroupRejected>(await AsPneAsync("p2", new AddMember("grp", "p2", "p3"))).Error);
        Assert.IsType<GroupAccepted>(await AsPneAsync("p1", new GrantPrivilege("grp", "p1", "p2", Privilege.Manage)));
        Assert.Equal(3, Assert.IsType<GroupAccepted>(await AsPneAsync("p2", new AddMember("grp", "p2", "p3"))).Epoch);
        // ... but it cannot hand out more than it holds, nor delete the group.
        Assert.Equal(GroupError.NotAuthorized, Assert.IsType<GroupRejected>(
            await AsPneAsync("p2", new GrantPrivilege("grp", "p2", "p3", Privilege.Administer))).Error);
        Assert.Equal(GroupError.NotAuthorized,
            Assert.IsType<GroupRejected>(await AsPneAsync("p2", new DeleteGroup("grp", "p2"))).Error);
        Assert.True((await GroupAsync("grp")).Exists);
    }

    [Fact]
    public async Task An_open_group_lets_an_entity_join_itself_and_anyone_leave_itself()
    {
        await StartAsync();
        await AsPneAsync("p1", new CreateGroup("open", "p1", DeliveryMode.Push, ["p1"], JoinPolicy: JoinPolicy.Open));
        Assert.Equal(2, Assert.IsType<GroupAccepted>(await AsPneAsync("p3", new AddMember("open", "p3", "p3"))).Epoch);
        Assert.Equal(GroupError.NotAuthorized, Assert.IsType<GroupRejected>(
            await AsPneAsync("p3", new AddMember("open", "p3", "p2"))).Error);
        Assert.Equal(3, Assert.IsType<GroupAccepted>(await AsPneAsync("p3", new RemoveMember("open", "p3", "p3"))).Epoch);
    }

    [Fact]
    public async Task A_bad_envelope_signature_is_refused_counted_and_changes_nothing()
    {
        await StartAsync();
        var envelope = SealAs("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"]));
        var bytes = envelope.Signature.ToArray();
        bytes[10] ^= 0xff;
        Server.Smf.Tell(envelope with { Signature = Octets.Own(bytes) }, TestActor);
        Assert.Equal(EnvelopeRejection.BadSignature, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        Assert.Equal(1, await CounterAsync(Server.Smf, EnvelopeRejection.BadSignature));
        Assert.False((await GroupAsync("grp")).Exists);
    }

    [Fact]
    public async Task An_entity_that_leaves_the_inventory_loses_its_privileges_on_every_group()
    {
        await StartAsync();
        Assert.IsType<GroupAccepted>(await AsPneAsync("p1", new CreateGroup("owned", "p1", DeliveryMode.Pull, ["p2"])));
        Assert.IsType<GroupAccepted>(await AsPneAsync("p1", new GrantPrivilege("owned", "p1", "p3", Privilege.Manage)));
        Assert.Equal(Privilege.Administer, (await GroupAsync("owned")).Acl!.Single(a => a.SubjectId == "p1").Privilege);

        await Server.Registry.Ask<CredentialRevocationAccepted>(new RevokeCredential("p1", "lost"), Timeout);
        await AwaitAssertAsync(async () => Assert.DoesNotContain("p1", (await GroupAsync("owned")).Acl!.Select(a => a.SubjectId)), Timeout);
        var group = await GroupAsync("owned");
        Assert.Equal(["p2"], group.Members);
        Assert.Equal(Privilege.Manage, group.Acl!.Single(a => a.SubjectId == "p3").Privilege);
        Assert.Equal(Privilege.None,
            (await Server.Smf.Ask<Privileges>(new GetPrivileges("p1"), Timeout)).ByGroup.GetValueOrDefault("owned", Privilege.None));
    }

    [Fact]
    public async Task A_replayed_envelope_is_refused_and_does_not_act_twice()
    {
        await StartAsync();
        await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"]));
        var remove = SealAs("p1", new RemoveMember("grp", "p1", "p2"));
        Server.Smf.Tell(remove, TestActor);
        Assert.Equal(2, Unseal<GroupAccepted>(await ExpectMsgAsync<SignedEnvelope>(Timeout)).Epoch);
        await AsPneAsync("p1", new AddMember("grp", "p1", "p2"));

        Server.Smf.Tell(remove, TestActor); // an eavesdropper replays the removal
        Assert.Equal(EnvelopeRejection.Replayed, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        var state = await GroupAsync("grp");
        Assert.Equal(3L, state.Epoch);
        Assert.Equal(["p1", "p2"], state.Members);
        Assert.Equal(1, await CounterAsync(Server.Smf, EnvelopeRejection.Replayed));
    }

    [Fact]
    public async Task A_stale_timestamp_is_refused()
    {
        await StartAsync();
        var p1 = Identities["p1"];
        var request = new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"]);
        var payload = Octets.Own(Sys.Serialization.FindSerializerFor(request).ToBinary(request));
        var stale = Sys.Scheduler.Now.AddMinutes(-10).ToUnixTimeMilliseconds();
        var signature = p1.Sign(SignedEnvelope.SignedPart("p1", "old", 1, stale, nameof(CreateGroup), payload).Bytes);
        Server.Smf.Tell(new SignedEnvelope("p1", "old", 1, stale, nameof(CreateGroup), payload, signature), TestActor);
        Assert.Equal(EnvelopeRejection.StaleTimestamp, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        Assert.False((await GroupAsync("grp")).Exists);
    }

    [Fact]
    public async Task An_envelope_from_an_unregistered_sender_is_refused()
    {
        await StartAsync();
        var stranger = EntityIdentity.Generate("p1", EntityKind.Pne); // claims p1's id, has its own key
        Server.Smf.Tell(SealAs(stranger, new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        Assert.Equal(EnvelopeRejection.BadSignature, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        var unknown = EntityIdentity.Generate("ghost", EntityKind.Pne);
        Server.Smf.Tell(SealAs(unknown, new CreateGroup("grp", "ghost", DeliveryMode.Pull, [])), TestActor);
        Assert.Equal(EnvelopeRejection.UnknownSender, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
        Assert.False((await GroupAsync("grp")).Exists);
    }

    [Fact]
    public async Task A_key_request_from_a_gateway_that_serves_no_member_is_refused()
    {
        await StartAsync();
        await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"]));
        Server.Cskmf.Tell(SealAs("g2", new GroupKeyRequest("grp", 1, "g2")), TestActor);
        var refused = await ExpectSealedAsync<GroupKeyRefused>();
        Assert.Equal(KeyError.NotAuthorized, refused.Error);

        // Nor may a gateway ask in another's name.
        Server.Cskmf.Tell(SealAs("g2", new GroupKeyRequest("grp", 1, "g1")), TestActor);
        Assert.Equal(KeyError.NotAuthorized, (await ExpectSealedAsync<GroupKeyRefused>()).Error);
    }

    [Fact]
    public async Task Pulls_a_gateway_sent_before_the_answer_to_them_are_answered_once()
    {
        await StartAsync();
        await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"]));
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        var before = await Server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, Timeout);

        // A pull and two retries that queued behind it, then a pull sent after the answer (as if the answer were lost).
        var gateway = CreateTestProbe();
        var now = Sys.Scheduler.Now.ToUnixTimeMilliseconds();
        Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", 1, "g1", now)), gateway.Ref);
        Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", 1, "g1", now - 1)), gateway.Ref);
        Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", 1, "g1", now - 1)), gateway.Ref);
        Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", 1, "g1", now + 60_000)), gateway.Ref);

        for (var answer = 0; answer < 2; answer++)
            Assert.Equal(("grp", 1L), Unseal<GroupKeyDelivery>(await gateway.ExpectMsgAsync<SignedEnvelope>(Timeout)) is var d
                ? (d.GroupId, d.Epoch) : default);
        var after = await Server.Cskmf.Ask<KeyDeliveryStats>(GetKeyDeliveryStats.Instance, Timeout);
        Assert.Equal(2, after.RepeatedPullsSkipped - before.RepeatedPullsSkipped);
        Assert.Equal(2, after.FlatDeliveries - before.FlatDeliveries);
        await gateway.ExpectNoMsgAsync(TimeSpan.Zero); // the stats were asked after all four were handled
    }

    [Fact]
    public async Task A_key_never_enters_a_PN_below_the_groups_security_level()
    {
        await StartNetworkAsync(["g1", "weak"], new Dictionary<string, string> { ["p1"] = "g1", ["pw"] = "weak" },
            pnSecurity: new Dictionary<string, SecurityLevel> { ["weak"] = SecurityLevel.Low });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("secret", "p1", DeliveryMode.Push, ["p1"], SecurityLevel.High)), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        Server.Smf.Tell(new LocalRequest(new AddMember("secret", "p1", "pw")), TestActor);
        var rejected = await ExpectMsgAsync<GroupRejected>(Timeout);
        Assert.Equal(GroupError.InsufficientSecurityLevel, rejected.Error);
        Assert.Contains("Low", rejected.Detail);

        Server.Cskmf.Tell(SealAs("weak", new GroupKeyRequest("secret", 1, "weak")), TestActor);
        var refused = await ExpectSealedAsync<GroupKeyRefused>();
        Assert.Equal(KeyError.InsufficientSecurityLevel, refused.Error);
        Assert.Empty((await KeyStateAsync(Gateways["weak"], "secret")).Epochs);
        Assert.Empty((await KeyStateAsync(Pnes["pw"], "secret")).Epochs);
    }
    [Fact]
    public async Task A_PN_whose_security_drops_gets_no_new_key_of_a_group_that_needs_more_until_it_recovers()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("secret", "p1", DeliveryMode.Push, ["p1", "p2"], SecurityLevel.High)), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitCurrentEpochAsync("p2", 1);

        // g2's PN loses its WPA3 link: what it has left is Low. The server holds the PN to that, and the group rekeys.
        var lowered = await Gateways["g2"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g2", DeviceCapabilities.Gateway(SecurityLevel.Low)), Timeout);
        Assert.Equal(SecurityLevel.Low, lowered.PnSecurityLevel);
        await AwaitCurrentEpochAsync("p1", 2);
        Assert.Equal(2, (await GroupAsync("secret")).Epoch);
        Assert.DoesNotContain(2L, (await KeyStateAsync(Gateways["g2"], "secret")).Epochs);
        Assert.DoesNotContain(2L, (await KeyStateAsync(Pnes["p2"], "secret")).Epochs);
        Server.Cskmf.Tell(SealAs("g2", new GroupKeyRequest("secret", 2, "g2")), TestActor);
        Assert.Equal(KeyError.InsufficientSecurityLevel, (await ExpectSealedAsync<GroupKeyRefused>()).Error);
        // A group that needs no more than Low is not rekeyed for it.
        Server.Smf.Tell(new LocalRequest(new CreateGroup("open", "p1", DeliveryMode.Push, ["p1", "p2"], SecurityLevel.Low)), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);

        // Back to High: the next epoch of "secret" enters g2's PN again; "open" keeps its epoch.
        var raised = await Gateways["g2"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g2", DeviceCapabilities.Gateway(SecurityLevel.High)), Timeout);
        Assert.Equal(SecurityLevel.High, raised.PnSecurityLevel);
        await AwaitCurrentEpochAsync("p2", 3);
        Assert.Equal(3, (await GroupAsync("secret")).Epoch);
        Assert.Equal(1, (await GroupAsync("open")).Epoch);
    }

    [Fact]
    public async Task A_PN_GW_that_claims_more_PN_security_than_it_was_provisioned_for_is_held_to_its_ceiling()
    {
        await StartServerAsync();
        StartGateway("g1");
        StartGateway("g2", pnSecurity: SecurityLevel.High, pnSecurityCeiling: SecurityLevel.Medium);
        await AwaitRegisteredAsync(Gateways.Values);
        StartPne("p1", "g1");
        StartPne("p2", "g2");
        await AwaitRegisteredAsync(Pnes.Values);

        // g2 declares High; its credential says Medium at most: a group that needs High cannot take p2 in.
        var refused = await RefusedHighGroupAsync();
        Assert.Contains("p2 (behind g2) offers Medium", refused.Detail);

        // A Medium group does reach p2.
        Server.Smf.Tell(new LocalRequest(new CreateGroup("medium", "p1", DeliveryMode.Push, ["p1", "p2"], SecurityLevel.Medium)), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p2"], "medium")).CurrentEpoch), Timeout);

        // Declaring High again is answered with the level held; the ceiling only caps, so Low is Low.
        Assert.Equal(SecurityLevel.Medium, (await Gateways["g2"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g2", DeviceCapabilities.Gateway(SecurityLevel.High)), Timeout)).PnSecurityLevel);
        Assert.Equal(SecurityLevel.Low, (await Gateways["g2"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g2", DeviceCapabilities.Gateway(SecurityLevel.Low)), Timeout)).PnSecurityLevel);
        Assert.Equal(SecurityLevel.Medium, (await Gateways["g2"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g2", DeviceCapabilities.Gateway(SecurityLevel.High)), Timeout)).PnSecurityLevel);

        // The ceiling is journaled with the registration: a restarted server still holds g2 to it.
        await RestartServerAsync();
        await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.Contains("p2 (behind g2) offers Medium", (await RefusedHighGroupAsync()).Detail);
    }

    private async Task<GroupRejected> RefusedHighGroupAsync()
    {
        Server.Smf.Tell(new LocalRequest(new CreateGroup("secret", "p1", DeliveryMode.Push, ["p1", "p2"], SecurityLevel.High)), TestActor);
        var refused = await ExpectMsgAsync<GroupRejected>(Timeout);
        Assert.Equal(GroupError.InsufficientSecurityLevel, refused.Error);
        return refused;
    }

    [Fact]
    public async Task A_gateway_reports_capabilities_only_for_itself()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1" });
        // g2 signs a change of g1's capabilities: the registry counts it and takes none of it.
        Server.Registry.Tell(SealAs("g2", new GatewayCapabilitiesChanged("g1", DeviceCapabilities.Gateway(SecurityLevel.None))), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(1,
            (await Server.Registry.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("SenderMismatch")), Timeout);
        var own = await Gateways["g1"].Ask<GatewayCapabilitiesAccepted>(
            new UpdateCapabilities("g1", DeviceCapabilities.Gateway(SecurityLevel.Medium)), Timeout);
        Assert.Equal(SecurityLevel.Medium, own.PnSecurityLevel);
    }

    private async Task AwaitCurrentEpochAsync(string pne, long epoch) =>
        await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes[pne], "secret")).CurrentEpoch), Timeout);

    [Fact]
    public async Task An_entity_registered_as_operator_gets_no_operator_authority()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["operator"] = "g1" });
        Assert.IsType<GroupAccepted>(await AsPneAsync("p1", new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"])));
        Assert.IsType<ServicePublished>(await AsPneAsync("p1", new PublishService(new ServiceDescription("s-club", "Club", "p1", "video",
            ["club"], new Dictionary<string, string>(), [], 0, Privilege.Operate, "grp", 0))));

        // Signed by the entity "operator": the name is only a name.
        var join = Assert.IsType<GroupRejected>(await AsPneAsync("operator", new AddMember("grp", "operator", "operator")));
        Assert.Equal(GroupError.NotAuthorized, join.Error);
        var delete = Assert.IsType<GroupRejected>(await AsPneAsync("operator", new DeleteGroup("grp", "operator")));
        Assert.Equal(GroupError.NotAuthorized, delete.Error);
        var grant = Assert.IsType<GroupRejected>(await AsPneAsync("operator", new GrantPrivilege("grp", "operator", "operator", Privilege.Administer)));
        Assert.Equal(GroupError.NotAuthorized, grant.Error);
        var found = Assert.IsType<SearchResult>(await AsPneAsync("operator", new SearchServices("operator", ["club"],
            new Dictionary<string, string>(), 0, 10)));
        Assert.Empty(found.Hits);

        var group = await GroupAsync("grp");
        Assert.Equal(1, group.Epoch);
        Assert.Equal(["p1", "p2"], group.Members);
        Assert.DoesNotContain(group.Acl!, e => e.SubjectId == "operator");

        // The node's operator, through the node-local API, administers the group.
        Assert.IsType<GroupAccepted>(await Server.Smf.Ask<object>(new LocalRequest(new AddMember("grp", "operator", "operator")), Timeout));
        Assert.Equal(["s-club"], (await Server.Directory.Ask<SearchResult>(new LocalRequest(new SearchServices("operator", ["club"],
            new Dictionary<string, string>(), 0, 10)), Timeout)).Hits.Select(h => h.ServiceId));
    }
}
