using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Services;

/// <summary>Usage reports (seed §5.3.1.10, §5.4): only what the reporting PN GW may report, each kept with its signature as proof.</summary>
public sealed class UsageReportTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static UsageRecord Record(string deviceId, string gatewayId, long bytes) =>
        new(deviceId, gatewayId, "s-video", "grp", 1, bytes, 0, 1000, 1_796_000_000_000, 1_796_000_001_000);

    private Task StartTwoPnsAsync() =>
        StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1", ["p3"] = "g2" });

    [Fact]
    public async Task A_PN_GW_reports_only_its_own_PNEs_and_the_server_keeps_its_signed_report_as_proof()
    {
        await StartTwoPnsAsync();
        var report = new UsageReport("g1", 1, [Record("p1", "g1", 100), Record("p3", "g1", 5000), Record("p2", "g1", 7)]);
        Server.Usage.Tell(SealAs(Identities["g1"], report), TestActor);
        Assert.Equal(new UsageReportAck("g1", 1), await ExpectSealedAsync<UsageReportAck>());

        // p3 is behind g2: g1 cannot bill it.
        var summary = await Server.Usage.Ask<UsageSummary>(new QueryUsage(), Timeout);
        Assert.Equal(["p1", "p2"], summary.Records.Select(r => r.DeviceId).Order());
        Assert.Empty((await Server.Usage.Ask<UsageSummary>(new QueryUsage(EntityId: "p3"), Timeout)).Records);

        var proof = await Server.Usage.Ask<UsageProof>(new GetUsageProof(1), Timeout);
        Assert.Equal(("g1", 1L), (proof.Source, proof.Sequence));
        Assert.True(proof.VerifiedBy(Identities["g1"].PublicKeys.Signing), "g1's own signature over what it reported");
        Assert.False(proof.VerifiedBy(Identities["g2"].PublicKeys.Signing));
        var tampered = proof with { Envelope = proof.Envelope! with { Payload = Octets.Own(proof.Envelope.Payload.ToArray().Reverse().ToArray()) } };
        Assert.False(tampered.VerifiedBy(Identities["g1"].PublicKeys.Signing));
        Assert.Equal(report.Records, Unseal<UsageReport>(proof.Envelope!).Records);
    }

    [Fact]
    public async Task A_report_signed_by_another_PN_GW_than_it_names_is_refused_and_nothing_is_recorded()
    {
        await StartTwoPnsAsync();
        Server.Usage.Tell(SealAs(Identities["g2"], new UsageReport("g1", 1, [Record("p1", "g1", 100)])), TestActor);
        Server.Usage.Tell(SealAs(Identities["g2"], new UsageReport("g2", 1, [Record("p1", "g1", 100), Record("p1", "g2", 100)])), TestActor);
        Assert.Equal(new UsageReportAck("g2", 1), await ExpectSealedAsync<UsageReportAck>());
        Assert.Empty((await Server.Usage.Ask<UsageSummary>(new QueryUsage(), Timeout)).Records);
        Assert.Null((await Server.Usage.Ask<UsageProof>(new GetUsageProof(3), Timeout)).Envelope);
    }
}
