using Cpns.Actors.Local;
using System.Text;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// Group keys in use: content is bound to group, epoch and sender; removed members cannot read what follows,
/// new members cannot read what came before, the previous epoch lasts only the grace window, every epoch is
/// signed by the key manager and acknowledged.
/// </summary>
public sealed class GroupKeySecurityTests(ITestOutputHelper output)
    : CpnsTestKit(output, "cpns.keys.grace-window = 1500ms\ncpns.keys.push-timeout = 300ms")
{
    private Task StartAsync() => StartNetworkAsync(["g1", "g2"],
        new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2", ["p4"] = "g2" });

    private async Task<long> ChangeAsync(ICpnsMessage command)
    {
        Server.Smf.Tell(new LocalRequest(command), TestActor);
        return (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch;
    }

    private async Task AwaitEpochAsync(long epoch, params string[] members)
    {
        foreach (var member in members)
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Entity(member), "grp")).CurrentEpoch), Timeout);
    }

    private async Task<GroupCiphertext> EncryptAsync(string member, string text)
    {
        var reply = await Entity(member).Ask<object>(new EncryptContent("grp", Octets.Own(Encoding.UTF8.GetBytes(text))), Timeout);
        return Assert.IsType<GroupCiphertext>(reply);
    }

    private async Task<object> DecryptAsync(string member, GroupCiphertext ciphertext) =>
        await Entity(member).Ask<object>(new DecryptContent(ciphertext), Timeout);

    private async Task AssertReadsAsync(string member, GroupCiphertext ciphertext, string text) =>
        Assert.Equal(text, Encoding.UTF8.GetString(Assert.IsType<ContentDecrypted>(await DecryptAsync(member, ciphertext)).Plaintext.Span));

    private async Task<KeyError> RefusalAsync(string member, GroupCiphertext ciphertext) =>
        Assert.IsType<ContentRefused>(await DecryptAsync(member, ciphertext)).Error;

    [Theory]
    [InlineData(DeliveryMode.Push)]
    [InlineData(DeliveryMode.Pull)]
    public async Task Removed_members_cannot_read_what_follows_and_new_members_cannot_read_what_came_before(DeliveryMode mode)
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", mode, ["p1", "p2", "p3"]));
        await AwaitEpochAsync(1, "p1", "p2", "p3");
        var beforeJoin = await EncryptAsync("p1", "sent at epoch 1");
        Assert.Equal(1, beforeJoin.Epoch);
        await AssertReadsAsync("p3", beforeJoin, "sent at epoch 1");

        Assert.Equal(2, await ChangeAsync(new AddMember("grp", "p1", "p4")));
        await AwaitEpochAsync(2, "p1", "p2", "p3", "p4");
        Assert.Equal(KeyError.UnknownEpoch, await RefusalAsync("p4", beforeJoin)); // backward secrecy
        Assert.Equal([2L], (await KeyStateAsync(Pnes["p4"], "grp")).Epochs);

        Assert.Equal(3, await ChangeAsync(new RemoveMember("grp", "p1", "p2")));
        await AwaitEpochAsync(3, "p1", "p3", "p4");
        var afterRemoval = await EncryptAsync("p3", "sent at epoch 3");
        Assert.Equal(3, afterRemoval.Epoch);
        await AssertReadsAsync("p1", afterRemoval, "sent at epoch 3");
        await AssertReadsAsync("p4", afterRemoval, "sent at epoch 3");
        Assert.Equal(KeyError.UnknownGroup, await RefusalAsync("p2", afterRemoval)); // forward secrecy: p2 dropped its keys
        Assert.DoesNotContain(3L, (await KeyStateAsync(Pnes["p2"], "grp")).Epochs);
        // and p2's PN GW never gave it epoch 3: it serves the others, not p2.
        var gateway = await Sys.ActorSelection("/user/gateway-g1/cskmf").ResolveOne(Timeout);
        gateway.Tell(SealAs("p2", new GroupKeyRequest("grp", 3, "p2")), TestActor);
        Assert.Equal(KeyError.NotAuthorized, (await ExpectSealedAsync<GroupKeyRefused>()).Error);
    }

    [Fact]
    public async Task A_member_reads_both_of_its_epochs_within_the_grace_window_and_not_after()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p3"]));
        await AwaitEpochAsync(1, "p1", "p3");
        var old = await EncryptAsync("p1", "epoch one");

        await ChangeAsync(new AddMember("grp", "p1", "p2"));
        await AwaitEpochAsync(2, "p1", "p3");
        var current = await EncryptAsync("p1", "epoch two");
        Assert.Equal(2, current.Epoch);
        await AssertReadsAsync("p3", old, "epoch one");
        await AssertReadsAsync("p3", current, "epoch two");

        await AwaitAssertAsync(async () => Assert.Equal(KeyError.StaleEpoch, await RefusalAsync("p3", old)),
            Dilated(TimeSpan.FromSeconds(10)), TimeSpan.FromMilliseconds(200));
        await AssertReadsAsync("p3", current, "epoch two");
    }

    [Fact]
    public async Task Tampered_content_and_unknown_keys_are_refused()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p3"]));
        await AwaitEpochAsync(1, "p1", "p3");
        var ciphertext = await EncryptAsync("p1", "hello group");

        var flipped = ciphertext.Sealed.ToArray();
        flipped[^20] ^= 0x01;
        Assert.Equal(KeyError.IntegrityFailure, await RefusalAsync("p3", ciphertext with { Sealed = Octets.Own(flipped) }));
        Assert.Equal(KeyError.IntegrityFailure, await RefusalAsync("p3", ciphertext with { SenderId = "p2" })); // header is bound
        Assert.Equal(KeyError.UnknownEpoch, await RefusalAsync("p3", ciphertext with { Epoch = 9 }));
        Assert.Equal(KeyError.UnknownGroup, await RefusalAsync("p3", ciphertext with { GroupId = "other" }));
        await AssertReadsAsync("p3", ciphertext, "hello group"); // and nothing it holds was disturbed
    }

    [Theory]
    [InlineData(DeliveryMode.Push)]
    [InlineData(DeliveryMode.Pull)]
    public async Task Every_epoch_is_acknowledged_by_its_holders(DeliveryMode mode)
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", mode, ["p1", "p2", "p3"]));
        await AwaitAssertAsync(async () =>
        {
            var server = await Server.Cskmf.Ask<KeyAcks>(new GetKeyAcks("grp"), Timeout);
            Assert.Equal(1L, server.Epoch);
            Assert.Equal(["g1", "g2"], server.Acknowledged);
            Assert.Empty(server.Pending);
            var g1 = await Gateways["g1"].Ask<KeyAcks>(new GetKeyAcks("grp"), Timeout);
            Assert.Equal(["p1", "p2"], g1.Acknowledged);
        }, Timeout);
    }

    [Fact]
    public async Task A_key_whose_epoch_is_not_signed_by_the_key_manager_is_not_installed()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"]));
        await AwaitEpochAsync(1, "p1");

        // The PN GW (its identity, its pairwise key with p1) hands p1 a key of its own making for epoch 2,
        // announcing it with its own signature instead of the server's.
        var g1 = Identities["g1"];
        var fake = GroupKey.Generate("grp", 2);
        var forged = EpochAnnouncement.Sign(g1, "grp", 2, fake.KeyCheck) with { ManagerId = Settings.ServerId };
        var cskmf = await Sys.ActorSelection("/user/pne-p1/cskmf").ResolveOne(Timeout);
        cskmf.Tell(SealAs("g1", new GroupKeyDelivery("grp", 2, DeliveryMode.Push, "g1", "p1", fake.WrapFor(new PairwiseKeys(g1), "p1", Identities["p1"].PublicKeys.Agreement),
            fake.KeyCheck, ["p1"], forged)), TestActor);

        await AwaitAssertAsync(async () => Assert.Equal(1,
            (await cskmf.Ask<SecurityCounters>(GetSecurityCounters.Instance, Timeout)).Rejections.GetValueOrDefault("KeyNotVouched")), Timeout);
        Assert.Equal([1L], (await KeyStateAsync(Pnes["p1"], "grp")).Epochs);
    }

    [Fact]
    public async Task A_member_that_missed_a_push_pulls_the_key()
    {
        await StartAsync();
        await ChangeAsync(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2"]));
        await AwaitEpochAsync(1, "p1", "p2");

        // p2 loses epoch 1 (as if the push never reached it) and is told to expect it.
        var cskmf = await Sys.ActorSelection("/user/pne-p2/cskmf").ResolveOne(Timeout);
        cskmf.Tell(new DropGroupKeys("grp", 1, Revoked: false));
        Assert.Empty((await KeyStateAsync(Pnes["p2"], "grp")).Epochs);
        var flow = new FlowRecorder(this);
        var installs = CreateTestProbe();
        Sys.EventStream.Subscribe(installs.Ref, typeof(KeyInstalled));
        cskmf.Tell(new ExpectGroupKey("grp", 1));

        var installed = await installs.ExpectMsgAsync<KeyInstalled>(Dilated(TimeSpan.FromSeconds(5)));
        Assert.Equal(("p2", 1L, DeliveryMode.Pull), (installed.HolderId, installed.Epoch, installed.Mode));
        await flow.UntilAsync(s => s.Any(x => x is { Step: 11, Leg: FlowLeg.GatewayToPne }), Timeout);
        Assert.Equal(
        [
            (8, "pne-p2/smf", "pne-p2/cskmf/seca"),
            (9, "pne-p2/cskmf/seca", "gateway-g1/cskmf"),
            (10, "gateway-g1/cskmf", "pne-p2/cskmf/seca"),
            (11, "pne-p2/cskmf", "pne-p2/smf"),
        ], FlowRecorder.Shape(flow.Steps.Where(s => s.Kind == FlowKind.Pull)));
    }
}

/// <summary>The key manager renews every group's key on its own at the configured interval.</summary>
public sealed class PeriodicRekeyTests(ITestOutputHelper output) : CpnsTestKit(output, "cpns.keys.rekey-interval = 1s")
{
    [Fact]
    public async Task Groups_are_rekeyed_periodically_and_members_follow()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Pull, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);

        await AwaitAssertAsync(async () =>
        {
            var state = await Server.Smf.Ask<GroupState>(new GetGroup("grp"), Timeout);
            Assert.True(state.Epoch >= 3, $"epoch {state.Epoch}");
            Assert.Equal(["p1", "p2"], state.Members);
        }, Dilated(TimeSpan.FromSeconds(15)), TimeSpan.FromMilliseconds(200));

        var epoch = (await Server.Cskmf.Ask<HeldGroupKey>(new GetKeyState("grp"), Timeout)).CurrentEpoch;
        await AwaitAssertAsync(async () =>
            Assert.True((await KeyStateAsync(Pnes["p2"], "grp")).CurrentEpoch >= epoch), Dilated(TimeSpan.FromSeconds(10)));
    }
}

/// <summary>Which PN GW holds which epoch is soft state at the server: after a restart its PN GWs tell it again.</summary>
public sealed class KeyAcksAfterRestartTests(ITestOutputHelper output)
    : CpnsTestKit(output, "cpns.connections.heartbeat-interval = 300ms\ncpns.connections.restart-spread = 100ms")
{
    [Fact]
    public async Task After_a_server_restart_its_PN_GWs_tell_it_again_which_epoch_they_hold()
    {
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1", "p2", "p3"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () =>
            Assert.Equal(["g1", "g2"], (await Server.Cskmf.Ask<KeyAcks>(new GetKeyAcks("grp"), Timeout)).Acknowledged), Timeout);

        // The new server knows the epoch from its journal; its PN GWs see the new boot in a heartbeat, register again and
        // acknowledge the epoch they hold.
        await RestartServerAsync();
        await AwaitAssertAsync(async () =>
        {
            var acks = await Server.Cskmf.Ask<KeyAcks>(new GetKeyAcks("grp"), Timeout);
            Assert.Equal(1L, acks.Epoch);
            Assert.Equal(["g1", "g2"], acks.Acknowledged);
            Assert.Empty(acks.Pending);
        }, Timeout);
    }
}
