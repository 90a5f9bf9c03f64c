using Cpns.Actors.Security;
using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>A PNE moving to another PN (bridge), and a PN GW handing its PN to another (PN GW change).</summary>
public sealed class MoveTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private async Task StartAsync()
    {
        await StartNetworkAsync(["g1", "g2", "g3"],
            new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g3" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2", "p3"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var member in new[] { "p1", "p2", "p3" })
            await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
    }

    private async Task<string> GatewayOfAsync(string pne) =>
        (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Single(e => e.DeviceId == pne).GatewayId;

    private async Task<int> AttachedAsync(string gateway) =>
        (await Gateways[gateway].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).AttachedPnes;

    [Fact]
    public async Task A_bridge_denied_by_the_target_changes_nothing()
    {
        await StartAsync();
        var registration = (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId;
        Gateways["g2"].Tell(new SetGatewayPolicy(AcceptBridges: false, AgreeToHandover: true));
        var answer = await Pnes["p1"].Ask<BridgeAnswer>(new MoveToGateway("p1", Gateways["g2"]), Timeout);
        Assert.False(answer.Accepted);
        Assert.Equal("g2", answer.GatewayId);
        Assert.Contains("takes in no PNEs", answer.Reason);

        // g2 refused before any step of the move: nothing is attached to it and p1 is still registered through g1.
        Assert.Equal(0, await AttachedAsync("g2"));
        Assert.Equal("g1", await GatewayOfAsync("p1"));
        Assert.Equal(registration, (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId);
        Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch);
        Assert.Equal(1, (await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout)).Epoch);
    }

    [Fact]
    public async Task A_bridged_PNE_takes_its_registration_groups_and_status_along_and_leaves_its_old_PN()
    {
        await StartAsync();
        var flow = new FlowRecorder(this);
        var answer = await Pnes["p1"].Ask<BridgeAnswer>(new MoveToGateway("p1", Gateways["g2"]), Timeout);
        Assert.True(answer.Accepted, answer.Reason);

        await AwaitAssertAsync(async () => Assert.Equal("g2", await GatewayOfAsync("p1")), Timeout);
        await AwaitAssertAsync(async () =>
        {
            var group = await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout);
            Assert.Equal(["p1", "p2", "p3"], group.Members);
            Assert.Equal(2, group.Epoch); // its groups rekeyed around the move
        }, Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        await flow.UntilAsync(s => s.Any(x => x is { Epoch: 2, Step: 8, From: "gateway-g2/cskmf", To: "pne-p1/cskmf" }), Timeout);

        // No longer reachable through the old PN GW: it has let go, and g1 carries no key for p1 any more.
        await AwaitAssertAsync(async () => Assert.Equal(1, await AttachedAsync("g1")), Timeout);
        Assert.DoesNotContain(flow.Steps, x => x.Epoch == 2 && x.From.StartsWith("gateway-g1/", StringComparison.Ordinal) &&
                                               x.To.StartsWith("pne-p1/", StringComparison.Ordinal));
        var status = await Server.Status.Ask<EntityStatus>(new GetStatus("p1"), Timeout);
        Assert.True(status.Reachable);
        var watch = await Server.Status.Ask<object>(new WatchStatus("g2", "pn:g2", TestActor), Timeout);
        Assert.Contains("p1", Assert.IsType<WatchAccepted>(watch).Current.Select(s => s.DeviceId));
    }

    [Fact]
    public async Task A_PN_GW_holding_only_a_PNEs_credential_cannot_take_the_PNE_and_a_PNEs_consent_moves_it_once()
    {
        await StartAsync();
        var p1 = Identities["p1"];
        // A credential is as public as any certificate: g2 has one, and nothing of p1's private keys.
        var credential = Secrets.Authority.Issue("p1", EntityKind.Pne, p1.PublicKeys, Sys.Scheduler.Now.AddMinutes(-1), TimeSpan.FromDays(1));
        var endpoints = new PneEndpoints(TestActor, TestActor, TestActor);
        PneRegistration Claim(MoveConsent? consent) =>
            new("p1", p1.PublicKeys, credential, null, DeviceCapabilities.Pne(), 0, endpoints, Moving: true, MoveConsent: consent);
        async Task<PneRegistrationResult> RegisterThroughG2Async(MoveConsent? consent)
        {
            Server.Registry.Tell(SealAs(Identities["g2"], new RegisterPnes("g2", [Claim(consent)])), TestActor);
            return Assert.Single((await ExpectSealedAsync<PnesRegistered>()).Results);
        }

        var stolen = await RegisterThroughG2Async(null);
        Assert.Equal((RegistrationError.AuthenticationFailed, AuthFailure.BadSignature), (stolen.Error, stolen.Auth));
        Assert.Contains("a move needs the PNE's own proof or consent", stolen.Detail);

        // The nonce the server issues to g2 for a takeover; g3's is no good for g2.
        async Task<Octets> NonceForAsync(string gatewayId)
        {
            Server.Registry.Tell(SealAs(Identities[gatewayId], new MoveNonceRequest(gatewayId)), TestActor);
            return (await ExpectSealedAsync<MoveNonceIssued>()).Nonce;
        }

        var nonce = await NonceForAsync("g2");
        var now = Sys.Scheduler.Now.ToUnixTimeMilliseconds();
        var forgedBy = Cpns.Actors.Security.EntityIdentity.Generate("p1", EntityKind.Pne);
        foreach (var (consent, why) in new (MoveConsent, string)[]
                 {
                     (MoveConsent.Sign(forgedBy, credential, "g1", "g2", nonce, now), "not signed with its keys"),
                     (MoveConsent.Sign(p1, credential, "g1", "g3", nonce, now), "for another move"),
                     (MoveConsent.Sign(p1, credential, "g1", "g2", nonce, now - 3_600_000), "stale"),
                     (MoveConsent.Sign(p1, credential, "g1", "g2", Octets.Own(new byte[32]), now), "does not sign a nonce this server issued"),
                     (MoveConsent.Sign(p1, credential, "g1", "g2", await NonceForAsync("g3"), now), "does not sign a nonce this server issued"),
                 })
            Assert.Contains(why, (await RegisterThroughG2Async(consent)).Detail);
        Assert.Equal("g1", await GatewayOfAsync("p1"));

        // p1's own consent to exactly this move is taken, once.
        var real = MoveConsent.Sign(p1, credential, "g1", "g2", nonce, now);
        Assert.Null((await RegisterThroughG2Async(real)).Error);
        Assert.Equal("g2", await GatewayOfAsync("p1"));
        // p1 goes home by a bridge of its own (with its fresh proof), so the same consent would be a move again.
        Assert.True((await Pnes["p1"].Ask<BridgeAnswer>(new MoveToGateway("p1", Gateways["g1"]), Timeout)).Accepted);
        await AwaitAssertAsync(async () => Assert.Equal("g1", await GatewayOfAsync("p1")), Timeout);
        Assert.Contains("used before", (await RegisterThroughG2Async(real)).Detail);
        Assert.Equal("g1", await GatewayOfAsync("p1"));
    }

    [Fact]
    public async Task A_PNE_cannot_move_without_the_new_gateways_consent()
    {
        await StartAsync();
        using var refusals = new MetricRecorder("cpns.registrations.refused", "reason");
        // p1 simply registers at g2 without a bridge request: the server refuses to move it.
        var intruder = Deployment(Identities["p1"], "g2");
        await AwaitConditionAsync(() => Task.FromResult(refusals[nameof(RegistrationError.WrongGateway)] >= 1), Timeout);
        Assert.Equal("g1", await GatewayOfAsync("p1"));
        Sys.Stop(intruder);
    }

    private IActorRef Deployment(Cpns.Actors.Security.EntityIdentity identity, string gateway) =>
        Sys.ActorOf(Cpns.Actors.Pne.PneEntity.Props(identity, Secrets.TrustAnchor, Gateways[gateway], Settings), "pne-p1-again");

    [Fact]
    public async Task A_gateway_change_carries_the_PN_its_groups_and_key_role_over_and_the_PNEs_re_home()
    {
        await StartAsync();
        Gateways["g1"].Tell(new SetGatewayPolicy(AcceptBridges: true, AgreeToHandover: true)); // its PN's owner consents
        var flow = new FlowRecorder(this);
        var result = await Gateways["g2"].Ask<HandoverResult>(new TakeOverPn("g1", Gateways["g1"]), Timeout);
        Assert.True(result.Completed, result.Reason);
        Assert.Equal(2, result.Pnes);

        Assert.Equal("g2", await GatewayOfAsync("p1"));
        Assert.Equal("g2", await GatewayOfAsync("p2"));
        Assert.Equal(0, await AttachedAsync("g1"));
        Assert.Equal(2, await AttachedAsync("g2"));

        // The groups follow: new epochs reach p1 and p2 through g2, and g1 drops the group's keys.
        await AwaitAssertAsync(async () =>
        {
            var epoch = (await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout)).Epoch;
            Assert.True(epoch >= 2);
            Assert.Equal(epoch, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch);
            Assert.Equal(epoch, (await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch);
            Assert.Equal(epoch, (await KeyStateAsync(Pnes["p3"], "grp")).CurrentEpoch);
            Assert.Empty((await KeyStateAsync(Gateways["g1"], "grp")).Epochs);
        }, Timeout);
        await flow.UntilAsync(s => s.Any(x => x is { Step: 8, From: "gateway-g2/cskmf", To: "pne-p2/cskmf" }), Timeout);

        // The PNEs re-homed without registering themselves again: they answer management through g2.
        var dm = await Server.Dm.Ask<DmResult>(new DmCommand("p1", DmOperation.Get, "./CPNS/Gateway"), Timeout);
        Assert.Equal((DmStatus.Ok, "g2"), (dm.Status, dm.Value));
    }

    [Fact]
    public async Task A_gateway_that_does_not_agree_keeps_its_PN_and_refusing_is_the_default()
    {
        await StartAsync();
        var byDefault = await Gateways["g2"].Ask<HandoverResult>(new TakeOverPn("g1", Gateways["g1"]), Timeout);
        Assert.Equal((false, "this PN GW does not hand its PN over"), (byDefault.Completed, byDefault.Reason));

        Gateways["g1"].Tell(new SetGatewayPolicy(AcceptBridges: true, AgreeToHandover: true));
        Gateways["g1"].Tell(new SetGatewayPolicy(AcceptBridges: true, AgreeToHandover: false));
        var result = await Gateways["g2"].Ask<HandoverResult>(new TakeOverPn("g1", Gateways["g1"]), Timeout);
        Assert.False(result.Completed);
        Assert.Equal("g1", await GatewayOfAsync("p1"));
        Assert.Equal(2, await AttachedAsync("g1"));
    }

    private async Task<KnownRevocations> RevocationsAsync(string entity) =>
        await Entity(entity).Ask<KnownRevocations>(GetKnownRevocations.Instance, Timeout);

    private async Task<long> RefusalsAsync(string entity, string reason) =>
        (await Entity(entity).Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault(reason);

    [Fact]
    public async Task A_PNE_refuses_a_PN_GW_the_server_revoked_and_a_revocation_its_own_PN_GW_made_up()
    {
        await StartAsync();
        var revoked = await Server.Registry.Ask<CredentialRevocationAccepted>(new RevokeCredential("g2", "stolen"), Timeout);
        Assert.NotEmpty(revoked.Serials);

        // g1 passes the server's signed notice on to its PNEs.
        await AwaitAssertAsync(async () => Assert.Equal(new KnownRevocations(["g2"], revoked.Serials),
            await RevocationsAsync("p1"), KnownRevocationsComparer.Instance), Timeout);

        // g2 still runs and answers p1's bridge with its credential; p1 takes nothing from it and stays in g1's PN.
        var registration = (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId;
        var answer = await Pnes["p1"].Ask<BridgeAnswer>(new MoveToGateway("p1", Gateways["g2"]), Timeout);
        Assert.False(answer.Accepted);
        Assert.Equal(("g2", "g2 is revoked"), (answer.GatewayId, answer.Reason));
        Assert.Equal(1, await RefusalsAsync("p1", "GatewayRevoked"));
        Assert.Equal("g1", await GatewayOfAsync("p1"));
        Assert.Equal(registration, (await Pnes["p1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).RegistrationId);
        Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch);

        // g1 cannot revoke g3 for its PNEs: a notice signed by g1, under its own name or the server's, is refused.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var own = RevocationNotice.Sign(Identities["g1"], "g3", ["0badc0de"], now);
        Pnes["p1"].Tell(SealAs("g1", own), ActorRefs.NoSender);
        Pnes["p1"].Tell(SealAs("g1", own with { ServerId = Settings.ServerId }), ActorRefs.NoSender);
        await AwaitAssertAsync(async () => Assert.Equal(2, await RefusalsAsync("p1", "RevocationNotVouched")), Timeout);
        Assert.Equal(["g2"], (await RevocationsAsync("p1")).DeviceIds);

        // The notice is durable at the PN GW: g1 started again hands it to a PNE that registers afterwards.
        await StopEntityAsync(Gateways["g1"]);
        StartGateway("g1");
        await AwaitRegisteredAsync([Gateways["g1"]]);
        StartPne("p4", "g1");
        await AwaitRegisteredAsync([Pnes["p4"]]);
        Assert.Equal(new KnownRevocations(["g2"], revoked.Serials), await RevocationsAsync("p4"), KnownRevocationsComparer.Instance);
        Assert.Equal(0, await RefusalsAsync("p4", "RevocationNotVouched"));
    }

    private sealed class KnownRevocationsComparer : IEqualityComparer<KnownRevocations>
    {
        public static readonly KnownRevocationsComparer Instance = new();

        public bool Equals(KnownRevocations? x, KnownRevocations? y) =>
            x is not null && y is not null && x.DeviceIds.SequenceEqual(y.DeviceIds) && x.Serials.Order().SequenceEqual(y.Serials.Order());

        public int GetHashCode(KnownRevocations obj) => obj.DeviceIds.Count;
    }
}
