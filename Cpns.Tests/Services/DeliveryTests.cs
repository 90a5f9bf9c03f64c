using Cpns.Actors.Local;
using System.Text;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using Cpns.Actors.Common;

namespace Cpns.Tests.Services;

/// <summary>
/// Content delivery to service groups (encrypted once per epoch, one message per PN GW, fanned out by the PN GW),
/// and the usage statistics and charging records that follow from it.
/// </summary>
public sealed class DeliveryTests(ITestOutputHelper output)
    : CpnsTestKit(output, """
        cpns.usage.report-interval = 200ms
        cpns.charging.unit-bytes = 100
        cpns.charging.default-rate = 0.01
        cpns.charging.rates { "s-premium" = 0.05 }
        """)
{
    private const string Ace = "ace:studio";

    private static readonly Dictionary<string, string> Layout = new()
    {
        ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2", ["p4"] = "g2", ["p5"] = "g3", ["p6"] = "g1",
    };

    private async Task<long> StartWithGroupAsync(DeliveryMode mode = DeliveryMode.Push)
    {
        await StartNetworkAsync(["g1", "g2", "g3"], Layout);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("cinema", "operator", mode, ["p1", "p2", "p3", "p4"])), TestActor);
        var accepted = await ExpectMsgAsync<GroupAccepted>(Timeout);
        await AwaitEpochAsync(accepted.Epoch, "p1", "p2", "p3", "p4");
        return accepted.Epoch;
    }

    private async Task AwaitEpochAsync(long epoch, params string[] members)
    {
        foreach (var member in members)
            await AwaitAssertAsync(async () => Assert.Equal(epoch, (await KeyStateAsync(Pnes[member], "cinema")).CurrentEpoch), Timeout);
    }

    private async Task<object> DeliverAsync(string deliveryId, string text, string? target = null, string service = "s-film",
        string group = "cinema") =>
        await Server.Delivery.Ask<object>(
            new DeliverContent(deliveryId, Ace, service, group, Octets.Own(Encoding.UTF8.GetBytes(text)), target), Timeout);

    private async Task<IReadOnlyList<ReceivedItem>> ReceivedAsync(string pne) =>
        (await Pnes[pne].Ask<ReceivedContent>(new GetReceivedContent(pne), Timeout)).Items;

    private async Task<ReceivedItem> AwaitReceivedAsync(string pne, string deliveryId)
    {
        ReceivedItem? item = null;
        await AwaitAssertAsync(async () => item = Assert.Single(await ReceivedAsync(pne), i => i.DeliveryId == deliveryId), Timeout);
        return item!;
    }

    private async Task<ContentStats> StatsAsync(string gateway) => await Gateways[gateway].Ask<ContentStats>(GetContentStats.Instance, Timeout);


    private static string Text(ReceivedItem item)
    {
        Assert.NotNull(item.Plaintext);
        return Encoding.UTF8.GetString(item.Plaintext.ToArray());
    }

    [Fact]
    public async Task Group_content_is_encrypted_once_sent_once_per_PN_GW_and_every_member_decrypts_it()
    {
        var epoch = await StartWithGroupAsync();

        var accepted = Assert.IsType<ContentAccepted>(await DeliverAsync("d-1", "tonight: the third man"));
        Assert.Equal(("cinema", epoch), (accepted.GroupId, accepted.Epoch));
        Assert.Equal(["g1", "g2"], accepted.Gateways.Keys.Order());
        Assert.Equal(["p1", "p2"], accepted.Gateways["g1"]);
        Assert.Equal(["p3", "p4"], accepted.Gateways["g2"]);
        Assert.Empty(accepted.Unplaced);
        Assert.Equal(Encoding.UTF8.GetByteCount("tonight: the third man") + SealedLayout.Overhead, accepted.CiphertextBytes);

        foreach (var member in new[] { "p1", "p2", "p3", "p4" })
        {
            var item = await AwaitReceivedAsync(member, "d-1");
            Assert.Equal("tonight: the third man", Text(item));
            Assert.Equal((epoch, Ace, "s-film", (KeyError?)null), (item.Epoch, item.SenderId, item.ServiceId, item.Error));
        }

        // One message per PN GW with members crossed CPNS-2/3/4; the PN GW made the PNE copies.
        Assert.Equal(2, (await Server.Delivery.Ask<DeliveryStats>(GetDeliveryStats.Instance, Timeout)).GatewayMessages);
        await AwaitAssertAsync(async () =>
        {
            var g1 = await StatsAsync("g1");
            Assert.Equal((1L, 2L, 2L), (g1.GroupMessagesReceived, g1.CopiesSent, g1.Receipts));
        }, Timeout);
        Assert.Equal((1L, 2L), ((await StatsAsync("g2")).GroupMessagesReceived, (await StatsAsync("g2")).CopiesSent));
        Assert.Equal((0L, 0L), ((await StatsAsync("g3")).GroupMessagesReceived, (await StatsAsync("g3")).CopiesSent));

        // The non-members behind g1 and g3 got nothing, and cannot open the ciphertext when handed it.
        Assert.Empty(await ReceivedAsync("p5"));
        Assert.Empty(await ReceivedAsync("p6"));
        var ciphertext = await Server.Cskmf.Ask<GroupCiphertext>(new SealForGroup("cinema", Ace, Octets.Own("x"u8.ToArray())), Timeout);
        foreach (var outsider in new[] { "p5", "p6" })
            Assert.Equal(KeyError.UnknownGroup, (await Pnes[outsider].Ask<ContentRefused>(new DecryptContent(ciphertext), Timeout)).Error);
    }

    [Fact]
    public async Task A_removed_member_gets_nothing_it_can_decrypt_and_content_to_one_member_goes_only_to_its_PN_GW()
    {
        var epoch = await StartWithGroupAsync();
        Server.Smf.Tell(new LocalRequest(new RemoveMember("cinema", "operator", "p4")), TestActor);
        var removed = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal(epoch + 1, removed.Epoch);
        await AwaitEpochAsync(removed.Epoch, "p1", "p2", "p3");

        var accepted = Assert.IsType<ContentAccepted>(await DeliverAsync("d-after", "members only"));
        Assert.Equal(removed.Epoch, accepted.Epoch);
        Assert.Equal(["p3"], accepted.Gateways["g2"]);
        Assert.Equal("members only", Text(await AwaitReceivedAsync("p3", "d-after")));
        Assert.DoesNotContain(await ReceivedAsync("p4"), i => i.DeliveryId == "d-after");

        // Handed the new ciphertext anyway, the removed member cannot open it: it never got the new epoch.
        var fresh = await Server.Cskmf.Ask<GroupCiphertext>(new SealForGroup("cinema", Ace, Octets.Own("secret"u8.ToArray())), Timeout);
        var refused = await Pnes["p4"].Ask<object>(new DecryptContent(fresh), Timeout);
        Assert.IsType<ContentRefused>(refused);

        // To one member: only its PN GW gets a message.
        var single = Assert.IsType<ContentAccepted>(await DeliverAsync("d-one", "just for you", target: "p2"));
        Assert.Equal(["g1"], single.Gateways.Keys);
        Assert.Equal(["p2"], single.Gateways["g1"]);
        Assert.Equal("just for you", Text(await AwaitReceivedAsync("p2", "d-one")));
        // g1 made its copies of d-one in one go when it arrived: one, for p2 (d-after: two, for p1 and p2).
        var g1 = await StatsAsync("g1");
        Assert.Equal((2L, 3L), (g1.GroupMessagesReceived, g1.CopiesSent));
        Assert.DoesNotContain(await ReceivedAsync("p1"), i => i.DeliveryId == "d-one");
    }

    [Fact]
    public async Task A_member_PNE_posts_content_it_encrypted_itself_and_the_others_open_it()
    {
        var epoch = await StartWithGroupAsync();
        Pnes["p1"].Tell(new SendContent("d-p1", "s-film", "cinema", Octets.Own("popcorn at 8"u8.ToArray())), TestActor);
        var accepted = await ExpectMsgAsync<ContentAccepted>(Timeout);
        Assert.Equal(epoch, accepted.Epoch);
        Assert.Equal(["p2"], accepted.Gateways["g1"]); // never back to the sender
        foreach (var member in new[] { "p2", "p3", "p4" })
        {
            var item = await AwaitReceivedAsync(member, "d-p1");
            Assert.Equal(("popcorn at 8", "p1"), (Text(item), item.SenderId));
        }

        Assert.Empty(await ReceivedAsync("p1"));
        Assert.Equal(1, (await StatsAsync("g1")).PostsRelayed);

        // A non-member holds no key to encrypt with.
        Pnes["p5"].Tell(new SendContent("d-p5", "s-film", "cinema", Octets.Own("let me in"u8.ToArray())), TestActor);
        Assert.Equal(DeliveryError.NoKey, (await ExpectMsgAsync<ContentRejected>(Timeout)).Error);
    }

    [Fact]
    public async Task Bad_deliveries_are_refused_with_typed_errors_and_change_nothing()
    {
        var epoch = await StartWithGroupAsync();
        Assert.Equal(DeliveryError.UnknownGroup, Assert.IsType<ContentRejected>(await DeliverAsync("d-a", "x", group: "nope")).Error);
        Assert.Equal(DeliveryError.NotAMember, Assert.IsType<ContentRejected>(await DeliverAsync("d-b", "x", target: "p5")).Error);
        Assert.Equal(DeliveryError.InvalidRequest, Assert.IsType<ContentRejected>(await DeliverAsync("bad id!", "x")).Error);
        Assert.Equal(DeliveryError.TooLarge,
            Assert.IsType<ContentRejected>(await DeliverAsync("d-c", new string('x', Settings.Delivery.MaxContentBytes + 1))).Error);
        Assert.IsType<ContentAccepted>(await DeliverAsync("d-ok", "fine"));
        Assert.Equal(DeliveryError.Duplicate, Assert.IsType<ContentRejected>(await DeliverAsync("d-ok", "again")).Error);

        // A PNE's post must name itself as the sender and be under the current epoch.
        var byP1 = await Pnes["p1"].Ask<GroupCiphertext>(new EncryptContent("cinema", Octets.Own("hi"u8.ToArray())), Timeout);
        Server.Delivery.Tell(SealAs("p2", new PostContent("d-forged", "s-film", byP1)), TestActor);
        Assert.Equal(DeliveryError.NotAuthorized, (await ExpectSealedAsync<ContentRejected>()).Error);

        Server.Smf.Tell(new LocalRequest(new AddMember("cinema", "operator", "p6")), TestActor);
        var added = await ExpectMsgAsync<GroupAccepted>(Timeout);
        Assert.Equal(epoch + 1, added.Epoch);
        Server.Delivery.Tell(SealAs("p1", new PostContent("d-stale", "s-film", byP1)), TestActor);
        var stale = await ExpectSealedAsync<ContentRejected>();
        Assert.Equal(DeliveryError.StaleEpoch, stale.Error);

        // Only d-ok went out: one message to each of g1 and g2.
        var stats = await Server.Delivery.Ask<DeliveryStats>(GetDeliveryStats.Instance, Timeout);
        Assert.Equal((1L, 7L, 2L), (stats.Accepted, stats.Rejected, stats.GatewayMessages));
        await AwaitReceivedAsync("p1", "d-ok");
        Assert.Single(await ReceivedAsync("p1"));
    }

    [Fact]
    public async Task Usage_and_charging_add_up_exactly_to_the_deliveries_made_and_the_exports_round_trip()
    {
        await StartWithGroupAsync();
        var texts = new[] { "first reel", "second reel, longer than the first", new string('z', 450) };
        var sizes = new List<long>();
        for (var i = 0; i < texts.Length; i++)
        {
            var accepted = Assert.IsType<ContentAccepted>(await DeliverAsync($"d-{i}", texts[i], service: i == 2 ? "s-premium" : "s-film"));
            sizes.Add(accepted.CiphertextBytes);
        }

        Pnes["p3"].Tell(new SendContent("d-up", "s-film", "cinema", Octets.Own(new byte[200])), TestActor);
        var up = await ExpectMsgAsync<ContentAccepted>(Timeout);
        var upBytes = (long)up.CiphertextBytes;
        Assert.Equal(200 + SealedLayout.Overhead, upBytes);

        // Delivered: every text to p1..p4; d-up to p1, p2, p4.
        var downTotal = 4 * sizes.Sum() + 3 * upBytes;
        var upTotal = sizes.Sum() + upBytes; // the ACE sent each text once; p3 sent its post once
        await AwaitAssertAsync(async () =>
        {
            var group = await Server.Usage.Ask<UsageSummary>(new QueryUsage(GroupId: "cinema"), Timeout);
            Assert.Equal((downTotal, upTotal, 4L * 3 + 3 + 3 + 1), (group.BytesDown, group.BytesUp, group.Sessions));
        }, Dilated(TimeSpan.FromSeconds(10)));

        var p1 = await Server.Usage.Ask<UsageSummary>(new QueryUsage(EntityId: "p1"), Timeout);
        Assert.Equal((sizes.Sum() + upBytes, 0L, 4L), (p1.BytesDown, p1.BytesUp, p1.Sessions));
        var p3 = await Server.Usage.Ask<UsageSummary>(new QueryUsage(EntityId: "p3"), Timeout);
        Assert.Equal((sizes.Sum(), upBytes, 4L), (p3.BytesDown, p3.BytesUp, p3.Sessions));
        var premium = await Server.Usage.Ask<UsageSummary>(new QueryUsage(ServiceId: "s-premium"), Timeout);
        Assert.Equal((4 * sizes[2], sizes[2]), (premium.BytesDown, premium.BytesUp));
        var g2 = await Server.Usage.Ask<UsageSummary>(new QueryUsage(EntityId: "g2"), Timeout); // p3 and p4, reported by g2
        Assert.Equal(2 * sizes.Sum() + upBytes, g2.BytesDown);
        var future = await Server.Usage.Ask<UsageSummary>(new QueryUsage(FromMs: DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()),
            Timeout);
        Assert.Equal(0, future.Sessions);

        // Charging: one record per usage record, rated per 100-byte unit (premium at its own rate).
        ChargingStatement statement = null!;
        await AwaitAssertAsync(async () =>
        {
            statement = await (await Deployment.ChargingOf(ServerActor, Timeout)).Ask<ChargingStatement>(new GetStatement(StatementSubject.Group, "cinema"), Timeout);
            Assert.Equal(downTotal + upTotal, statement.TotalVolumeBytes);
        }, Dilated(TimeSpan.FromSeconds(10)));
        var usage = await Server.Usage.Ask<UsageSummary>(new QueryUsage(GroupId: "cinema"), Timeout);
        Assert.Equal(usage.Records.Count(r => r.Sessions > 0), statement.Records.Count);
        Assert.Equal(usage.Sessions, statement.TotalSessions);
        foreach (var record in statement.Records)
        {
            Assert.Equal((record.VolumeBytes + 99) / 100, record.Units);
            Assert.Equal(record.ServiceId == "s-premium" ? 0.05m : 0.01m, record.Rate);
            Assert.Equal(record.Units * record.Rate, record.Amount);
        }

        Assert.Equal(statement.Records.Sum(r => r.Amount), statement.TotalAmount);
        var p4Statement = await (await Deployment.ChargingOf(ServerActor, Timeout)).Ask<ChargingStatement>(new GetStatement(StatementSubject.User, "p4"), Timeout);
        Assert.Equal(sizes.Sum() + upBytes, p4Statement.TotalVolumeBytes);
        Assert.All(p4Statement.Records, r => Assert.Equal("p4", r.UserId));

        var csv = ChargingExport.ToCsv(statement.Records);
        Assert.StartsWith("record_id,user_id,service_id,group_id,start,end,volume_bytes,sessions,units,rate,amount,currency\n", csv);
        Assert.Equal(statement.Records, ChargingExport.FromCsv(csv));
        Assert.Equal(statement.Records, ChargingExport.FromJson(ChargingExport.ToJson(statement.Records)));
        Assert.Throws<FormatException>(() => ChargingExport.FromCsv("who,what\n1,2\n"));
    }
}
