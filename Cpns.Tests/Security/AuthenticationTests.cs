using System.Security.Cryptography;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Mutual challenge–response at registration, played from the device side by the test: every failure is a
/// typed refusal and leaves no registration behind.
/// </summary>
public sealed class AuthenticationTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static Octets Nonce() => Octets.Own(RandomNumberGenerator.GetBytes(32));

    /// <summary>Plays a PN GW through the whole handshake; returns the server's final answer.</summary>
    /// <param name="enrolmentToken">The token to prove; by default one provisioned for the gateway's id and kind ("" proves none).</param>
    private async Task<object> RegisterAsGatewayAsync(EntityIdentity gateway, Credential? credential = null,
        EntityIdentity? proofSigner = null, bool skipChallenge = false, EntityKind? registeredKind = null, string? enrolmentToken = null)
    {
        enrolmentToken ??= credential is null ? EnrolmentTokenFor(gateway.DeviceId, gateway.Kind) : "";
        var clientNonce = Nonce();
        Octets verifierNonce;
        if (skipChallenge)
        {
            verifierNonce = Nonce();
        }
        else
        {
            Server.Registry.Tell(SealAs(gateway, new AuthHello(gateway.DeviceId, gateway.Kind, gateway.PublicKeys, credential,
                clientNonce, AuthTranscripts.GatewayContext)), TestActor);
            var answer = Opened(await ExpectMsgAsync<object>(Timeout));
            if (answer is not AuthChallenge challenge)
                return answer;
            // The server proves itself: its credential chains to the KMC root and it signed both nonces.
            var server = Secrets.TrustAnchor.Verifier().Verify(challenge.VerifierCredential, Sys.Scheduler.Now, null,
                Settings.ServerId, EntityKind.Server);
            Assert.True(server.Valid, server.Detail);
            Assert.True(EntityIdentity.Verify(server.Credential!.Keys.Signing, AuthTranscripts.Verifier(AuthTranscripts.GatewayContext,
                gateway.DeviceId, challenge.VerifierId, clientNonce, challenge.VerifierNonce).Bytes, challenge.VerifierSignature));
            verifierNonce = challenge.VerifierNonce;
        }

        var signer = proofSigner ?? gateway;
        var proof = new AuthProof(AuthTranscripts.GatewayContext, clientNonce, verifierNonce, signer.Sign(AuthTranscripts.Client(
            AuthTranscripts.GatewayContext, gateway.DeviceId, Settings.ServerId, clientNonce, verifierNonce).Bytes));
        var enrolment = enrolmentToken.Length == 0 ? null
            : Enrolment.Proof(enrolmentToken, AuthTranscripts.GatewayContext, gateway.DeviceId, registeredKind ?? gateway.Kind, gateway.PublicKeys,
                Settings.ServerId, verifierNonce);
        Server.Registry.Tell(SealAs(gateway, new RegisterGateway(gateway.DeviceId, registeredKind ?? gateway.Kind, gateway.PublicKeys, credential,
            proof, DeviceCapabilities.Gateway(), 3600, new GatewayEndpoints(TestActor, TestActor, TestActor, TestActor, TestActor, TestActor, TestActor),
            enrolment)), TestActor);
        return Opened(await ExpectMsgAsync<object>(Timeout));
    }

    /// <summary>A sealed answer's payload, or the refusal of our envelope itself.</summary>
    private object Opened(object answer) => answer is SignedEnvelope ? Unseal<object>(answer) : answer;

    private async Task AssertNotRegisteredAsync(string deviceId)
    {
        var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.DoesNotContain(inventory.Gateways.Concat(inventory.Pnes), e => e.DeviceId == deviceId);
    }

    private async Task ExpectRefusalAsync(Task<object> attempt, AuthFailure failure, string deviceId)
    {
        switch (await attempt)
        {
            case RegistrationRejected rejected:
                Assert.Equal((RegistrationError.AuthenticationFailed, failure), (rejected.Error, rejected.Auth));
                break;
            case EnvelopeRejected { Reason: EnvelopeRejection.Revoked } when failure == AuthFailure.Revoked:
                break; // a revoked sender is refused before its message is even read
            case var other:
                Assert.Fail($"expected a {failure} refusal, got {other}");
                break;
        }

        await AssertNotRegisteredAsync(deviceId);
    }

    [Fact]
    public async Task An_honest_gateway_enrolls_and_gets_a_credential_from_the_KMC()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-honest", EntityKind.PnGateway);
        var registered = Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(gateway));
        var check = Secrets.TrustAnchor.Verifier().Verify(registered.Credential, Sys.Scheduler.Now, null, "gw-honest",
            EntityKind.PnGateway);
        Assert.True(check.Valid, check.Detail);
        Assert.Equal(gateway.PublicKeys, check.Credential!.Keys);

        // With the credential it authenticates again (e.g. after a restart).
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(gateway, registered.Credential));
    }

    /// <summary>Provisions <paramref name="deviceId"/> with a token of the test's own (not the kit's), as the operator would.</summary>
    private async Task<string> ProvisionAsync(string deviceId, EntityKind kind, long expiresAtMs = long.MaxValue)
    {
        var (token, provision) = Enrolment.Provision(deviceId, kind, expiresAtMs);
        var answer = await Server.Registry.Ask<DevicesProvisioned>(new ProvisionDevices([provision]), Timeout);
        Assert.Equal([deviceId], answer.DeviceIds);
        return token;
    }

    [Fact]
    public async Task Nobody_enrols_without_what_the_operator_provisioned_for_that_id_and_kind()
    {
        await StartServerAsync();
        using var refusals = new MetricRecorder("cpns.registrations.refused", "reason");
        // Never provisioned: refused at the hello already, nothing issued.
        var stranger = EntityIdentity.Generate("gw-stranger", EntityKind.PnGateway);
        await ExpectRefusalAsync(RegisterAsGatewayAsync(stranger, enrolmentToken: ""), AuthFailure.NotProvisioned, "gw-stranger");

        // Provisioned, but the registration proves no token, or another device's token, or a made-up one.
        var token = await ProvisionAsync("gw-new", EntityKind.PnGateway);
        var other = await ProvisionAsync("gw-other", EntityKind.PnGateway);
        var newcomer = EntityIdentity.Generate("gw-new", EntityKind.PnGateway);
        await ExpectRefusalAsync(RegisterAsGatewayAsync(newcomer, enrolmentToken: ""), AuthFailure.NotProvisioned, "gw-new");
        await ExpectRefusalAsync(RegisterAsGatewayAsync(newcomer, enrolmentToken: other), AuthFailure.NotProvisioned, "gw-new");
        await ExpectRefusalAsync(RegisterAsGatewayAsync(newcomer, enrolmentToken: Enrolment.NewToken()), AuthFailure.NotProvisioned, "gw-new");

        // Provisioned as a PNE: it does not enrol as a PN GW (nor as BOTH).
        await ProvisionAsync("dev-pne", EntityKind.Pne);
        await ExpectRefusalAsync(RegisterAsGatewayAsync(EntityIdentity.Generate("dev-pne", EntityKind.PnGateway), enrolmentToken: ""),
            AuthFailure.WrongKind, "dev-pne");

        // An expired token is no token.
        var stale = await ProvisionAsync("gw-late", EntityKind.PnGateway, expiresAtMs: Sys.Scheduler.Now.AddMinutes(-1).ToUnixTimeMilliseconds());
        await ExpectRefusalAsync(RegisterAsGatewayAsync(EntityIdentity.Generate("gw-late", EntityKind.PnGateway), enrolmentToken: stale),
            AuthFailure.NotProvisioned, "gw-late");
        Assert.Equal((5, 1), (refusals["NotProvisioned"], refusals["WrongKind"]));

        // The right token enrols once; afterwards the id is bound to those keys, and the token opens nothing for other keys.
        var enrolled = Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(newcomer, enrolmentToken: token));
        var thief = Assert.IsType<RegistrationRejected>(
            await RegisterAsGatewayAsync(EntityIdentity.Generate("gw-new", EntityKind.PnGateway), enrolmentToken: token));
        Assert.Equal(AuthFailure.KeyMismatch, thief.Auth);
        Assert.Equal(1, refusals["KeyMismatch"]);
        Assert.Equal(["gw-new"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Gateways.Select(g => g.DeviceId));
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(newcomer, enrolled.Credential));
    }

    /// <summary>Plays a PNE registering through <paramref name="gatewayId"/>: hello, challenge, registration; returns the answer.</summary>
    private async Task<object> RegisterAsPneAsync(EntityIdentity pne, string gatewayId, string? enrolmentToken)
    {
        var clientNonce = Nonce();
        Gateways[gatewayId].Tell(SealAs(pne, new AuthHello(pne.DeviceId, EntityKind.Pne, pne.PublicKeys, null, clientNonce, AuthTranscripts.PneContext)),
            TestActor);
        var challenge = Unseal<AuthChallenge>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
        var proof = new AuthProof(AuthTranscripts.PneContext, clientNonce, challenge.VerifierNonce, pne.Sign(AuthTranscripts.Client(
            AuthTranscripts.PneContext, pne.DeviceId, challenge.VerifierId, clientNonce, challenge.VerifierNonce).Bytes));
        var enrolment = enrolmentToken is null ? null
            : Enrolment.Proof(enrolmentToken, AuthTranscripts.PneContext, pne.DeviceId, EntityKind.Pne, pne.PublicKeys, challenge.VerifierId,
                challenge.VerifierNonce);
        Gateways[gatewayId].Tell(SealAs(pne, new RegisterPne(pne.DeviceId, pne.PublicKeys, null, proof, DeviceCapabilities.Pne(), 3600,
            new PneEndpoints(TestActor, TestActor, TestActor), enrolment)), TestActor);
        return Unseal<object>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
    }

    [Fact]
    public async Task A_PNE_enrols_through_its_PN_GW_only_with_its_token_and_a_PN_GW_cannot_use_it_for_other_keys()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string>());
        var unprovisioned = Assert.IsType<RegistrationRejected>(await RegisterAsPneAsync(EntityIdentity.Generate("p-new", EntityKind.Pne), "g1", null));
        Assert.Equal((RegistrationError.AuthenticationFailed, AuthFailure.NotProvisioned), (unprovisioned.Error, unprovisioned.Auth));
        await AssertNotRegisteredAsync("p-new");

        // The PN GW relays the PNE's token proof; a PN GW that swaps in keys of its own (with its own signed proof for them)
        // gets nothing from it: the proof is bound to the PNE's keys and the nonce.
        var token = await ProvisionAsync("p-new", EntityKind.Pne);
        var victim = EntityIdentity.Generate("p-new", EntityKind.Pne);
        var attacker = EntityIdentity.Generate("p-new", EntityKind.Pne);
        var nonce = Nonce();
        var stolen = Enrolment.Proof(token, AuthTranscripts.PneContext, "p-new", EntityKind.Pne, victim.PublicKeys, "g1", nonce);
        var clientNonce = Nonce();
        var forgedProof = new AuthProof(AuthTranscripts.PneContext, clientNonce, nonce, attacker.Sign(AuthTranscripts.Client(AuthTranscripts.PneContext, "p-new",
            "g1", clientNonce, nonce).Bytes));
        Server.Registry.Tell(SealAs("g1", new RegisterPnes("g1", [new PneRegistration("p-new", attacker.PublicKeys, null, forgedProof,
            DeviceCapabilities.Pne(), 3600, new PneEndpoints(TestActor, TestActor, TestActor), Enrolment: stolen)])), TestActor);
        var swapped = Assert.Single(Unseal<PnesRegistered>(await ExpectMsgAsync<SignedEnvelope>(Timeout)).Results);
        Assert.Equal((RegistrationError.AuthenticationFailed, AuthFailure.NotProvisioned), (swapped.Error, swapped.Auth));
        await AssertNotRegisteredAsync("p-new");

        var registered = Assert.IsType<PneRegistered>(await RegisterAsPneAsync(victim, "g1", token));
        Assert.Equal(("p-new", "g1"), (registered.DeviceId, registered.GatewayId));
    }

    [Fact]
    public async Task Provisioning_refuses_server_ids_enrolled_ids_and_bad_entries()
    {
        await StartServerAsync();
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(EntityIdentity.Generate("gw-a", EntityKind.PnGateway)));
        var key = Enrolment.KeyOf(Enrolment.NewToken());
        var answer = await Server.Registry.Ask<DevicesProvisioned>(new ProvisionDevices(
        [
            new DeviceProvision("srv-2", EntityKind.Server, key, long.MaxValue),
            new DeviceProvision("gw-a", EntityKind.PnGateway, key, long.MaxValue),
            new DeviceProvision("bad id!", EntityKind.Pne, key, long.MaxValue),
            new DeviceProvision("p-short", EntityKind.Pne, Octets.Own([1, 2, 3]), long.MaxValue),
            new DeviceProvision("p-ok", EntityKind.Pne, key, long.MaxValue),
            new DeviceProvision("p-ok", EntityKind.Pne, key, long.MaxValue),
        ]), Timeout);
        Assert.Equal(["p-ok"], answer.DeviceIds);
        Assert.Equal(["srv-2", "gw-a", "bad id!", "p-short", "p-ok"], answer.Refused.Select(r => r.DeviceId));
        Assert.Contains("never enrolled", answer.Refused[0].Detail);
        Assert.Contains("bound to its keys", answer.Refused[1].Detail);
    }

    [Fact]
    public async Task A_forged_credential_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-forged", EntityKind.PnGateway);
        var der = Secrets.Authority.Issue("gw-forged", EntityKind.PnGateway, gateway.PublicKeys, Sys.Scheduler.Now.AddHours(-1),
            TimeSpan.FromDays(1)).Der.ToArray();
        der[^3] ^= 0x01;
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, new Credential(Octets.Own(der))), AuthFailure.BadSignature, "gw-forged");
    }

    [Fact]
    public async Task A_credential_from_another_root_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-foreign", EntityKind.PnGateway);
        var foreign = CredentialAuthority.Generate(Settings.ServerId + "-kmc")
            .Issue("gw-foreign", EntityKind.PnGateway, gateway.PublicKeys, Sys.Scheduler.Now.AddHours(-1), TimeSpan.FromDays(1));
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, foreign), AuthFailure.UnknownIssuer, "gw-foreign");
    }

    [Fact]
    public async Task An_expired_credential_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-old", EntityKind.PnGateway);
        var expired = Secrets.Authority.Issue("gw-old", EntityKind.PnGateway, gateway.PublicKeys, Sys.Scheduler.Now.AddDays(-30),
            TimeSpan.FromDays(1));
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, expired), AuthFailure.Expired, "gw-old");
    }

    [Fact]
    public async Task A_credential_of_the_wrong_kind_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-pne", EntityKind.PnGateway);
        var pneCredential = Secrets.Authority.Issue("gw-pne", EntityKind.Pne, gateway.PublicKeys, Sys.Scheduler.Now.AddHours(-1),
            TimeSpan.FromDays(1));
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, pneCredential), AuthFailure.WrongKind, "gw-pne");
    }

    [Fact]
    public async Task A_revoked_credential_is_refused_and_its_holder_is_gone()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-revoked", EntityKind.PnGateway);
        var registered = Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(gateway));

        Server.Registry.Tell(new RevokeCredential("gw-revoked", "stolen device"), TestActor);
        var revoked = await ExpectMsgAsync<CredentialRevocationAccepted>(Timeout);
        Assert.Single(revoked.Serials);
        await AssertNotRegisteredAsync("gw-revoked");

        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, registered.Credential), AuthFailure.Revoked, "gw-revoked");
        // Nor can it enroll again without a credential.
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway), AuthFailure.Revoked, "gw-revoked");
    }

    [Fact]
    public async Task A_proof_signed_with_another_key_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-liar", EntityKind.PnGateway);
        await ExpectRefusalAsync(
            RegisterAsGatewayAsync(gateway, proofSigner: EntityIdentity.Generate("gw-liar", EntityKind.PnGateway)),
            AuthFailure.BadSignature, "gw-liar");
    }

    [Fact]
    public async Task A_registration_without_a_challenge_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-hasty", EntityKind.PnGateway);
        await ExpectRefusalAsync(RegisterAsGatewayAsync(gateway, skipChallenge: true), AuthFailure.NoChallenge, "gw-hasty");
    }

    [Fact]
    public async Task A_taken_device_id_cannot_be_enrolled_with_other_keys()
    {
        await StartServerAsync();
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(EntityIdentity.Generate("gw-x", EntityKind.PnGateway)));
        var impostor = EntityIdentity.Generate("gw-x", EntityKind.PnGateway);
        var rejected = Assert.IsType<RegistrationRejected>(await RegisterAsGatewayAsync(impostor));
        Assert.Equal(AuthFailure.KeyMismatch, rejected.Auth);
    }

    [Theory]
    [InlineData(EntityKind.Server)]
    [InlineData(EntityKind.Both)]
    [InlineData(EntityKind.Pne)]
    public async Task Enrolment_issues_only_the_kind_that_said_hello_and_never_a_Server_credential(EntityKind asked)
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-greedy", EntityKind.PnGateway);
        var answer = await RegisterAsGatewayAsync(gateway, registeredKind: asked);
        var rejected = Assert.IsType<RegistrationRejected>(answer);
        Assert.Equal(RegistrationError.InvalidRequest, rejected.Error);
        Assert.Contains("said hello as PnGateway", rejected.Detail);
        await AssertNotRegisteredAsync("gw-greedy");

        // A hello as Server is refused before any challenge.
        var server = EntityIdentity.Generate("gw-server", EntityKind.Server);
        Assert.IsType<RegistrationRejected>(await RegisterAsGatewayAsync(server));
        await AssertNotRegisteredAsync("gw-server");
    }

    [Fact]
    public async Task A_PNE_cannot_take_the_id_of_a_PNE_registered_at_the_same_PN_GW()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new Cpns.Actors.Local.LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        var impostor = EntityIdentity.Generate("p1", EntityKind.Pne);
        Gateways["g1"].Tell(SealAs(impostor, new AuthHello("p1", EntityKind.Pne, impostor.PublicKeys, null, Nonce(), AuthTranscripts.PneContext)),
            TestActor);
        var rejected = Unseal<RegistrationRejected>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal((RegistrationError.AuthenticationFailed, AuthFailure.KeyMismatch), (rejected.Error, rejected.Auth));

        // Nothing moved: the victim keeps its registration and its keys, and the next epoch is wrapped for it, not the impostor.
        var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.Single(inventory.Pnes, p => p.DeviceId == "p1");
        Server.Smf.Tell(new Cpns.Actors.Local.LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        Assert.Equal(2, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(2, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
    }

    [Fact]
    public async Task An_id_stays_bound_to_its_keys_after_it_deregisters_and_after_a_server_restart()
    {
        await StartServerAsync();
        var owner = EntityIdentity.Generate("gw-lapsed", EntityKind.PnGateway);
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(owner));
        Server.Registry.Tell(SealAs(owner, new DeregisterEntities("gw-lapsed", ["gw-lapsed"])), TestActor);
        Assert.Equal(["gw-lapsed"], (await ExpectSealedAsync<RegistrationsEnded>()).DeviceIds);
        await AssertNotRegisteredAsync("gw-lapsed");

        var squatter = EntityIdentity.Generate("gw-lapsed", EntityKind.PnGateway);
        await ExpectRefusalAsync(RegisterAsGatewayAsync(squatter), AuthFailure.KeyMismatch, "gw-lapsed");
        await RestartServerAsync();
        await ExpectRefusalAsync(RegisterAsGatewayAsync(squatter), AuthFailure.KeyMismatch, "gw-lapsed");

        // The device that holds the keys comes back under its id.
        Assert.IsType<GatewayRegistered>(await RegisterAsGatewayAsync(owner));
    }

    [Fact]
    public async Task An_unsigned_registration_is_refused()
    {
        await StartServerAsync();
        var gateway = EntityIdentity.Generate("gw-plain", EntityKind.PnGateway);
        Server.Registry.Tell(new AuthHello("gw-plain", EntityKind.PnGateway, gateway.PublicKeys, null, Nonce(),
            AuthTranscripts.GatewayContext), TestActor);
        var rejected = Unseal<RegistrationRejected>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal(RegistrationError.AuthenticationFailed, rejected.Error);
        await AssertNotRegisteredAsync("gw-plain");
    }

    [Fact]
    public async Task A_gateway_does_not_register_with_a_server_it_cannot_authenticate()
    {
        // The test plays the server: first with a credential from a foreign root, then with the real one.
        var secrets = ServerSecrets.Generate(Settings.ServerId);
        var fakeServer = CreateTestProbe();
        var identity = EntityIdentity.Generate("gw-careful", EntityKind.PnGateway);
        Sys.ActorOf(Actors.Gateway.GatewayEntity.Props(identity, secrets.TrustAnchor, fakeServer.Ref, Settings), "gateway-gw-careful");

        var hello = Unseal<AuthHello>(await fakeServer.ExpectMsgAsync<SignedEnvelope>(Timeout));
        var connections = fakeServer.LastSender;
        var impostor = ServerSecrets.Generate(Settings.ServerId);
        connections.Tell(Challenge(impostor, hello), fakeServer.Ref);
        var refused = await fakeServer.ExpectMsgAsync<EnvelopeRejected>(Timeout);
        Assert.Equal(EnvelopeRejection.UnknownSender, refused.Reason); // its credential does not chain to our root

        var real = Challenge(secrets, hello, "real");
        connections.Tell(real, fakeServer.Ref);
        // The first registration it sends is the answer to the real challenge: none went out to the impostor.
        var register = Unseal<RegisterGateway>(await fakeServer.ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal("gw-careful", register.GatewayId);
        Assert.Equal(Unseal<AuthChallenge>(real).VerifierNonce, register.Proof.VerifierNonce);
    }

    /// <summary>A challenge by <paramref name="signer"/> holding a genuine Server credential for its own key from <paramref name="issuer"/>'s KMC.</summary>
    private (SignedEnvelope Challenge, Octets Nonce) ChallengeBy(ServerSecrets issuer, EntityIdentity signer, AuthHello hello)
    {
        var credential = issuer.Authority.Issue(signer.DeviceId, EntityKind.Server, signer.PublicKeys, Sys.Scheduler.Now.AddHours(-1),
            TimeSpan.FromDays(1));
        var nonce = Nonce();
        var signature = signer.Sign(AuthTranscripts.Verifier(AuthTranscripts.GatewayContext, hello.DeviceId, signer.DeviceId, hello.ClientNonce, nonce).Bytes);
        return (SealAs(signer, new AuthChallenge(hello.DeviceId, signer.DeviceId, credential, hello.ClientNonce, nonce, signature)), nonce);
    }

    [Fact]
    public async Task A_gateway_registers_only_with_the_server_it_was_provisioned_with_not_another_server_of_the_same_KMC()
    {
        var secrets = ServerSecrets.Generate(Settings.ServerId);
        var server = CreateTestProbe();
        Sys.ActorOf(Actors.Gateway.GatewayEntity.Props(EntityIdentity.Generate("gw-pinned", EntityKind.PnGateway), secrets.TrustAnchor, server.Ref,
            Settings), "gateway-gw-pinned");
        var hello = Unseal<AuthHello>(await server.ExpectMsgAsync<SignedEnvelope>(Timeout));
        var connections = server.LastSender;

        // Rogue servers whose credentials are genuine (the same KMC root): one under the pinned id with another key, one under
        // another id. Then the pinned server itself: the first registration the PN GW sends answers its challenge.
        connections.Tell(ChallengeBy(secrets, EntityIdentity.Generate(Settings.ServerId, EntityKind.Server), hello).Challenge, server.Ref);
        connections.Tell(ChallengeBy(secrets, EntityIdentity.Generate("rogue-server", EntityKind.Server), hello).Challenge, server.Ref);
        var (genuine, nonce) = ChallengeBy(secrets, secrets.Identity, hello);
        connections.Tell(genuine, server.Ref);
        var envelope = await server.FishForMessageAsync(m => m is SignedEnvelope e && Unseal<object>(e) is RegisterGateway, Timeout);
        var register = Unseal<RegisterGateway>(envelope);
        Assert.Equal(nonce, register.Proof.VerifierNonce);
    }

    private SignedEnvelope Challenge(ServerSecrets server, AuthHello hello, string? channel = null)
    {
        var credential = server.Authority.Issue(Settings.ServerId, EntityKind.Server, server.Identity.PublicKeys,
            Sys.Scheduler.Now.AddHours(-1), TimeSpan.FromDays(1));
        var nonce = Nonce();
        var signature = server.Identity.Sign(AuthTranscripts.Verifier(AuthTranscripts.GatewayContext, hello.DeviceId, Settings.ServerId,
            hello.ClientNonce, nonce).Bytes);
        return SealAs(server.Identity, new AuthChallenge(hello.DeviceId, Settings.ServerId, credential, hello.ClientNonce, nonce,
            signature), channel);
    }

    [Fact]
    public async Task A_PNE_with_a_forged_credential_is_refused_by_its_gateway()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string>());
        var pne = EntityIdentity.Generate("p-forged", EntityKind.Pne);
        var der = Secrets.Authority.Issue("p-forged", EntityKind.Pne, pne.PublicKeys, Sys.Scheduler.Now.AddHours(-1),
            TimeSpan.FromDays(1)).Der.ToArray();
        der[^2] ^= 0x10;
        Gateways["g1"].Tell(SealAs(pne, new AuthHello("p-forged", EntityKind.Pne, pne.PublicKeys, new Credential(Octets.Own(der)),
            Nonce(), AuthTranscripts.PneContext)), TestActor);
        var rejected = Unseal<RegistrationRejected>(await ExpectMsgAsync<SignedEnvelope>(Timeout));
        Assert.Equal((RegistrationError.AuthenticationFailed, AuthFailure.BadSignature), (rejected.Error, rejected.Auth));
        await AssertNotRegisteredAsync("p-forged");
    }

    [Fact]
    public async Task A_revoked_PNE_is_detached_by_its_gateway_and_refused_on_CPNS_1()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        Server.Registry.Tell(new RevokeCredential("p1", "lost"), TestActor);
        await ExpectMsgAsync<CredentialRevocationAccepted>(Timeout);
        await AwaitAssertAsync(async () =>
            Assert.Equal(0, (await Gateways["g1"].Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout)).AttachedPnes),
            Timeout);

        var p1 = Identities["p1"];
        Gateways["g1"].Tell(SealAs(p1, new AuthHello("p1", EntityKind.Pne, p1.PublicKeys, null, Nonce(), AuthTranscripts.PneContext),
            "again"), TestActor);
        var refused = await ExpectMsgAsync<EnvelopeRejected>(Timeout);
        Assert.Equal(EnvelopeRejection.Revoked, refused.Reason);

        // The PN GW keeps what it learned: started again, it still refuses the revoked PNE.
        await StopEntityAsync(Gateways["g1"]);
        StartGateway("g1");
        await AwaitRegisteredAsync([Gateways["g1"]]);
        Gateways["g1"].Tell(SealAs(p1, new AuthHello("p1", EntityKind.Pne, p1.PublicKeys, null, Nonce(), AuthTranscripts.PneContext),
            "after-restart"), TestActor);
        Assert.Equal(EnvelopeRejection.Revoked, (await ExpectMsgAsync<EnvelopeRejected>(Timeout)).Reason);
    }
}
