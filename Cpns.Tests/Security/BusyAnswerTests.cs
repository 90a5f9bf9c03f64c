using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Backpressure: the server's key function, registry and SMF, once behind, answer "busy, retry after" at once instead of
/// going silent, and their requesters wait and ask again.
/// </summary>
public sealed class BusyAnswerTests(ITestOutputHelper output) : CpnsTestKit(output,
    // No lease sweeps: while a function is held for a test, only the request under test reaches it.
    "cpns.load.busy-mailbox-depth = 3\ncpns.registration.cleaner-interval = 1h")
{
    [Fact]
    public async Task An_overloaded_key_function_answers_every_request_some_with_busy_and_a_retry_time()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        var epoch = (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch;
        await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);

        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        var gateway = CreateTestProbe();
        const int requests = 60;
        for (var i = 0; i < requests; i++)
            Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("grp", epoch, "g1")), gateway.Ref);

        var delivered = 0;
        var busyAnswers = new List<GroupKeyRefused>();
        for (var i = 0; i < requests; i++)
        {
            switch (Unseal<object>(await gateway.ExpectMsgAsync<SignedEnvelope>(Timeout)))
            {
                case GroupKeyDelivery delivery:
                    Assert.Equal(("grp", epoch), (delivery.GroupId, delivery.Epoch));
                    delivered++;
                    break;
                case GroupKeyRefused { Error: KeyError.Busy } refused:
                    Assert.Equal(("grp", epoch), (refused.GroupId, refused.Epoch));
                    busyAnswers.Add(refused);
                    break;
                case var other:
                    Assert.Fail($"unexpected answer {other}");
                    break;
            }
        }

        Output.WriteLine($"{delivered} delivered, {busyAnswers.Count} busy");
        Assert.True(delivered > 0, "the function still works through its queue");
        Assert.NotEmpty(busyAnswers);
        Assert.All(busyAnswers, b => Assert.InRange(b.RetryAfterMs, 100, 10_000));
        Assert.Equal(busyAnswers.Count, busy["server-cskmf"]);

        // The members still get the next epoch through the same function.
        Server.Smf.Tell(new LocalRequest(new AddMember("grp", "p1", "p2")), TestActor);
        var next = await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var member in new[] { "p1", "p2" })
            await AwaitAssertAsync(async () => Assert.Equal(next.Epoch, (await KeyStateAsync(Pnes[member], "grp")).CurrentEpoch), Timeout);
    }

    [Fact]
    public async Task An_overloaded_registry_answers_every_batch_some_with_busy_for_each_pne_and_a_retry_time()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        var gateway = CreateTestProbe();
        var stranger = EntityIdentity.Generate("p-unknown", EntityKind.Pne);
        var endpoints = new PneEndpoints(gateway.Ref, gateway.Ref, gateway.Ref);
        const int batches = 60;
        for (var i = 0; i < batches; i++)
            Server.Registry.Tell(SealAs("g1", new RegisterPnes("g1",
                [new PneRegistration($"p-unknown{i % 2}", stranger.PublicKeys, null, null, DeviceCapabilities.Pne(), 3600, endpoints)])), gateway.Ref);

        var busyAnswers = new List<PnesRegistered>();
        for (var i = 0; i < batches; i++)
        {
            var answer = Unseal<PnesRegistered>(await gateway.ExpectMsgAsync<SignedEnvelope>(Timeout));
            var result = Assert.Single(answer.Results);
            Assert.StartsWith("p-unknown", result.DeviceId);
            if (result.Error == RegistrationError.Busy)
                busyAnswers.Add(answer);
            else
                Assert.Equal(0, answer.RetryAfterMs); // worked through: the PNE has neither proof nor credential, so it is refused
        }

        Output.WriteLine($"{busyAnswers.Count} of {batches} busy");
        Assert.NotEmpty(busyAnswers);
        Assert.InRange(busyAnswers.Count, 1, batches - 1);
        Assert.All(busyAnswers, b => Assert.InRange(b.RetryAfterMs, Backpressure.MinRetryAfterMs, Backpressure.MaxRetryAfterMs));
        Assert.Equal(busyAnswers.Count, busy["registry"]);
        Assert.Equal(["g1"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Gateways.Select(g => g.DeviceId));
    }

    [Fact]
    public async Task An_overloaded_smf_answers_every_change_some_with_busy_and_a_retry_time()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        var device = CreateTestProbe();
        const int requests = 60;
        for (var i = 0; i < requests; i++)
            Server.Smf.Tell(SealAs("p1", new GrantPrivilege("grp", "p1", "p2", i % 2 == 0 ? Privilege.View : Privilege.Operate)), device.Ref);

        var accepted = 0;
        var busyAnswers = new List<GroupRejected>();
        for (var i = 0; i < requests; i++)
        {
            switch (Unseal<object>(await device.ExpectMsgAsync<SignedEnvelope>(Timeout)))
            {
                case GroupAccepted { GroupId: "grp", Change: GroupChange.PrivilegeGranted }:
                    accepted++;
                    break;
                case GroupRejected { GroupId: "grp", Error: GroupError.Busy } refused:
                    busyAnswers.Add(refused);
                    break;
                case var other:
                    Assert.Fail($"unexpected answer {other}");
                    break;
            }
        }

        Output.WriteLine($"{accepted} accepted, {busyAnswers.Count} busy");
        Assert.True(accepted > 0, "the SMF still works through its queue");
        Assert.NotEmpty(busyAnswers);
        Assert.All(busyAnswers, b => Assert.InRange(b.RetryAfterMs, Backpressure.MinRetryAfterMs, Backpressure.MaxRetryAfterMs));
        Assert.Equal(busyAnswers.Count, busy["server-smf"]);
    }

    [Fact]
    public async Task A_change_is_turned_away_while_the_key_function_it_needs_is_behind_and_goes_through_once_it_caught_up()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        var bystander = CreateTestProbe();
        await WhileHeldAsync(Server.Cskmf, async cell =>
        {
            for (var i = 0; i < 10; i++)
                Server.Cskmf.Tell(GetKeyDeliveryStats.Instance, bystander.Ref);
            await AwaitConditionAsync(() => Task.FromResult(cell.NumberOfMessages >= 10), Timeout);
            Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
            var rejected = await ExpectMsgAsync<GroupRejected>(Timeout);
            Assert.Equal(("grp", GroupError.Busy), (rejected.GroupId, rejected.Error));
            Assert.InRange(rejected.RetryAfterMs, Backpressure.MinRetryAfterMs, Backpressure.MaxRetryAfterMs);
            // A change that costs no rekey is not held back by the key function.
            Server.Smf.Tell(new LocalRequest(new GrantPrivilege("grp", "operator", "p1", Privilege.View)), TestActor);
            Assert.Equal(GroupError.UnknownGroup, (await ExpectMsgAsync<GroupRejected>(Timeout)).Error);
        });

        Assert.Equal(1, busy["server-smf"]);
        for (var i = 0; i < 10; i++)
            await bystander.ExpectMsgAsync<KeyDeliveryStats>(Timeout); // the key function has caught up
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
    }

    [Fact]
    public async Task A_pne_whose_group_request_is_answered_busy_sends_it_again_after_the_wait_and_its_application_hears_the_outcome()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        await BehindAsync(Server.Smf, new GetGroup("nothing"),
            () => Pnes["p1"].Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1"])), TestActor));

        var accepted = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal(("grp", GroupChange.Created, 1L), (accepted.GroupId, accepted.Change, accepted.Epoch));
        Assert.Equal(1, busy["server-smf"]); // the PNE's request met the busy SMF first; its application heard only the outcome
    }

    [Fact]
    public async Task A_gateway_whose_batch_is_answered_busy_keeps_its_pnes_waiting_and_registers_them_after_the_wait()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        using var refused = new MetricRecorder("cpns.registrations.refused", "reason");
        await ProvisionedAsync("p2", EntityKind.Pne);
        IActorRef latecomer = null!;
        await BehindAsync(Server.Registry, new GetLease("nothing"), () => latecomer = StartPne("p2", "g1"));

        await AwaitRegisteredAsync([latecomer]);
        Assert.Equal(1, busy["registry"]); // the PN GW's batch with p2 met the busy registry first
        Assert.Equal(["p1", "p2"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Pnes.Select(p => p.DeviceId));
        Assert.Equal(0, refused["Busy"]); // nothing was refused on the way
    }

    [Fact]
    public async Task A_gateway_whose_hello_is_answered_busy_registers_after_the_wait()
    {
        await StartServerAsync();
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        await ProvisionedAsync("g1", EntityKind.PnGateway);
        IActorRef gateway = null!;
        await BehindAsync(Server.Registry, new GetLease("nothing"), () => gateway = StartGateway("g1"));
        await AwaitRegisteredAsync([gateway]);
        Assert.Equal(1, busy["registry"]); // its hello met the busy registry first
        Assert.Equal(["g1"], (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Gateways.Select(g => g.DeviceId));
    }

    /// <summary>The device is provisioned before the registry is held, so that its hello is the first thing to reach it.</summary>
    private async Task ProvisionedAsync(string deviceId, EntityKind kind)
    {
        EnrolmentTokenFor(deviceId, kind);
        await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout); // answered after the provisioning is durable
    }

    /// <summary>
    /// Puts the request that <paramref name="send"/> causes behind nothing and ahead of a few node-local queries (never
    /// turned away): the function is held while the request arrives, the queries are queued behind it, and the function
    /// goes on. It meets the request with more waiting than the busy threshold (3), so it answers busy; the request sent
    /// again after the wait finds it keeping up.
    /// </summary>
    private async Task BehindAsync(IActorRef function, object query, Action send)
    {
        var bystander = CreateTestProbe();
        await WhileHeldAsync(function, async cell =>
        {
            send();
            await AwaitConditionAsync(() => Task.FromResult(cell.NumberOfMessages >= 1), Timeout);
            for (var i = 0; i < 10; i++)
                function.Tell(query, bystander.Ref);
        });
    }
}
