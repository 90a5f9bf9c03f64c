using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Actors.Simulation;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Flows;

/// <summary>The simulation engine behind `cpns simulate`, small, with every message serialized.</summary>
public sealed class SimulationTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    [Fact]
    public async Task A_group_s_next_change_waits_for_the_one_turned_away_busy_and_other_groups_do_not_wait()
    {
        var runner = new SimulationRunner(Sys, Settings, ServerSecrets.Generate(Settings.ServerId));
        var smf = CreateTestProbe();
        var join = new AddMember("g1", "owner", "p1");
        var other = new AddMember("g2", "owner", "p2");
        var leave = new RemoveMember("g1", "owner", "p1");
        var finalState = new Dictionary<string, (long Epoch, IReadOnlyList<string> Members)>();
        var run = runner.RunAllAsync(new SimulationOptions(), SimulationPhase.Churning, [("g1", join), ("g2", other), ("g1", leave)], 0,
            smf.Ref, finalState, null, CancellationToken.None);

        async Task<IActorRef> Asked(ICpnsMessage command)
        {
            Assert.Equal(command, (await smf.ExpectMsgAsync<Cpns.Actors.Local.LocalRequest>(Timeout)).Request);
            return smf.LastSender;
        }

        var joinAsker = await Asked(join);
        var otherAsker = await Asked(other); // another group's change does not wait for g1's
        joinAsker.Tell(new GroupRejected("g1", GroupError.Busy, "behind", RetryAfterMs: 100));
        otherAsker.Tell(new GroupAccepted("g2", GroupChange.MemberAdded, 2, ["owner", "p2"]));
        // The join goes again before the leave of the same member is sent at all.
        (await Asked(join)).Tell(new GroupAccepted("g1", GroupChange.MemberAdded, 2, ["owner", "p1"]));
        (await Asked(leave)).Tell(new GroupAccepted("g1", GroupChange.MemberRemoved, 3, ["owner"]));
        await run;

        Assert.Equal(3L, finalState["g1"].Epoch);
        Assert.Equal(["owner"], finalState["g1"].Members);
        Assert.Equal(2L, finalState["g2"].Epoch);
    }

    [Fact]
    public async Task A_small_network_ends_with_every_member_holding_its_groups_current_key()
    {
        var runner = new SimulationRunner(Sys, Settings, ServerSecrets.Generate(Settings.ServerId));
        var result = await runner.RunAsync(new SimulationOptions
        {
            Gateways = 3, Pnes = 30, Groups = 4, Seed = 7, ChurnPerGroup = 4, ConvergenceTimeout = Dilated(TimeSpan.FromSeconds(30)),
        });

        Assert.Equal((3, 30, 4), (result.Gateways, result.Pnes, result.Groups));
        Assert.True(result.Members > 0);
        Assert.Equal(result.Members, result.MembersWithCurrentKey);
        Assert.Equal(4 * (1 + 4), result.Epochs);
        Assert.True(result.KeysDeliveredPush > 0, "half the groups push");
        Assert.True(result.KeysDeliveredPull > 0, "half the groups pull");
        // The run accounts for itself: every phase timed in order, its cryptography counted, the floor it makes.
        Assert.Equal(["StartingServer", "RegisteringGateways", "RegisteringPnes", "CreatingGroups", "Churning", "Converging", "Verifying"],
            result.PhaseSeconds.Keys);
        Assert.True(result.PneRegistrationsPerSecond > 0);
        var crypto = Assert.IsType<CryptoOperations.Counts>(result.Crypto);
        // Each PNE proves itself once to its PN GW, which relays the proof to the server: at least two checks per PNE.
        Assert.True(crypto.Verifications >= 2 * 30, $"{crypto.Verifications} verifications");
        Assert.True(crypto.Agreements > 0 && crypto.Aead > 0 && crypto.Signatures > 0);
        Assert.True(result.CryptoFloorSeconds > 0);
        var ratio = result.WallSeconds / result.CryptoFloorSeconds; // both rounded to milliseconds: a few per cent apart at most
        Assert.InRange(result.WallOverFloor, ratio * 0.95, ratio * 1.05);
        Assert.Equal(result.KeysDeliveredPush > 0, result.PushP50Ms > 0);
        Assert.Equal(result.KeysDeliveredPull > 0, result.PullP50Ms > 0);
        // Every timed delivery is a new group's first key or a rekey's, nothing in both.
        Assert.True(result.FirstKeyPush.Count > 0 && result.FirstKeyPull.Count > 0, "each group's first epoch reached its members");
        Assert.True(result.RekeyPush.Count > 0 && result.RekeyPull.Count > 0, "the churn rekeyed both kinds of group");
        Assert.Equal(result.PushMaxMs, Math.Max(result.FirstKeyPush.MaxMs, result.RekeyPush.MaxMs));
        Assert.Equal(result.PullMaxMs, Math.Max(result.FirstKeyPull.MaxMs, result.RekeyPull.MaxMs));
        // Retries and busy answers are explained by the functions that counted them.
        Assert.Equal(result.Retries, result.RetriesByFunction.Values.Sum());
        Assert.Equal(result.BusyAnswers, result.BusyAnswersByFunction.Values.Sum());
        Assert.All(result.RetriesByFunction.Keys.Concat(result.BusyAnswersByFunction.Keys), Assert.NotEmpty);
    }

    [Fact]
    public async Task BOTH_devices_take_part_as_members_and_senders_and_sleeping_PNEs_get_their_content_on_waking()
    {
        var runner = new SimulationRunner(Sys, Settings, ServerSecrets.Generate(Settings.ServerId));
        var result = await runner.RunAsync(new SimulationOptions
        {
            Gateways = 3, Pnes = 12, Groups = 2, MembersPerGroup = 16, ChurnPerGroup = 0, BothDevices = 2, LegacyDevices = 2, Content = true,
            SleepingPnes = 4, ConvergenceTimeout = Dilated(TimeSpan.FromSeconds(30)),
        });
        Assert.Equal((2, 4), (result.BothDevices, result.SleepingPnes));
        Assert.Equal(result.Members, result.MembersWithCurrentKey);
        Assert.Equal((2, 2), (result.ContentSent, result.ContentAccepted));
        Assert.Equal(result.Members - 2, result.ContentDue);
        Assert.Equal(result.ContentDue, result.ContentOpened);

        // The BOTH devices were members like PNEs: each opened its groups' content, unless it sent it itself.
        var bothMemberships = 0;
        foreach (var groupId in new[] { "grp-0000", "grp-0001" })
        {
            var group = await Sys.ActorSelection("/user/server/smf").Ask<GroupState>(new GetGroup(groupId), Timeout);
            foreach (var both in group.Members.Where(m => m.StartsWith('g')))
            {
                bothMemberships++;
                var inbox = await Sys.ActorSelection($"/user/gateway-{both}").Ask<ReceivedContent>(new GetReceivedContent(both), Timeout);
                Assert.Equal(group.Members[0] == both ? 0 : 1, inbox.Items.Count(i => i.DeliveryId == $"sim-{groupId}" && i.Error is null));
            }
        }

        Assert.True(bothMemberships > 0, "the plan put no BOTH device in a group");

        // So were the devices without CPNS: what their groups sent reached the device itself, not only its representative.
        var legacyMemberships = 0;
        foreach (var groupId in new[] { "grp-0000", "grp-0001" })
        {
            var group = await Sys.ActorSelection("/user/server/smf").Ask<GroupState>(new GetGroup(groupId), Timeout);
            foreach (var legacy in group.Members.Where(m => m.StartsWith("legacy-", StringComparison.Ordinal) && m != group.Members[0]))
            {
                legacyMemberships++;
                var representative = await Sys.ActorSelection($"/user/gateway-*/legacy-{legacy}").ResolveOne(Timeout);
                Assert.Equal(1, (await KeyStateAsync(representative, groupId)).CurrentEpoch);
            }
        }

        Assert.Equal(2, result.LegacyDevices);
        Assert.True(legacyMemberships > 0, "the plan put no device without CPNS in a group (as a receiver)");
        Assert.Equal("--sleeping needs --content: PNEs sleep while content is sent to them",
            new SimulationOptions { SleepingPnes = 1 }.Validate());
        Assert.Equal("--legacy must be between 0 and 100000", new SimulationOptions { LegacyDevices = -1 }.Validate());
        Assert.Equal("--both must be between 0 and the number of PN GWs (10)", new SimulationOptions { BothDevices = 11 }.Validate());
    }

    [Fact]
    public async Task The_same_seed_plans_the_same_groups()
    {
        var first = await new SimulationRunner(Sys, Settings, ServerSecrets.Generate(Settings.ServerId))
            .RunAsync(new SimulationOptions { Gateways = 2, Pnes = 20, Groups = 2, Seed = 11, ChurnPerGroup = 2 });
        Assert.Equal(first.Members, first.MembersWithCurrentKey);

        using var other = Akka.Actor.ActorSystem.Create("cpns", Config());
        var second = await new SimulationRunner(other, Cpns.Actors.CpnsSettings.From(other),
                ServerSecrets.Generate(Settings.ServerId))
            .RunAsync(new SimulationOptions { Gateways = 2, Pnes = 20, Groups = 2, Seed = 11, ChurnPerGroup = 2 });
        Assert.Equal((first.Members, first.Epochs), (second.Members, second.Epochs));
        await other.Terminate();
    }

    [Fact]
    public void Bad_options_are_named()
    {
        Assert.Equal("--gateways must be at least 1", new SimulationOptions { Gateways = 0 }.Validate());
        Assert.Equal("--pnes must be at least 1", new SimulationOptions { Pnes = 0 }.Validate());
        Assert.Null(new SimulationOptions().Validate());
    }
}
