using Cpns.Actors.Local;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using Cpns.Actors.Common;

namespace Cpns.Tests.Host;

/// <summary><c>cpns charging</c> exports, from a real SQLite data folder, exactly the records the server holds.</summary>
public sealed class ChargingCommandTests : CpnsTestKit
{
    private static readonly ThreadLocal<TempFolder> Folder = new(() => new TempFolder("cpns-charging"));
    private readonly TempFolder _folder;

    public ChargingCommandTests(ITestOutputHelper output)
        : base(output, Akka.Configuration.ConfigurationFactory.ParseString("cpns.usage.report-interval = 200ms")
            .WithFallback(Storage.Sqlite(Folder.Value!.File(Storage.SqliteFileName))))
    {
        _folder = Folder.Value!;
        Folder.Value = new TempFolder("cpns-charging");
    }

    protected override void AfterAll()
    {
        base.AfterAll();
        _folder.Dispose();
    }

    [Fact]
    public async Task The_CSV_and_JSON_exports_hold_the_servers_charging_records()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g1" });
        Server.Smf.Tell(new LocalRequest(new CreateGroup("band", "operator", DeliveryMode.Push, ["p1", "p2"])), TestActor);
        await ExpectMsgAsync<GroupAccepted>(Timeout);
        foreach (var member in new[] { "p1", "p2" })
            await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes[member], "band")).CurrentEpoch), Timeout);
        for (var i = 0; i < 3; i++)
            Assert.IsType<ContentAccepted>(await Server.Delivery.Ask<object>(
                new DeliverContent($"d-{i}", "ace:label", "s-tracks", "band", Octets.Own(new byte[2000 + i])), Timeout));

        var charging = await Deployment.ChargingOf(ServerActor, Timeout);
        ChargingStatement statement = null!;
        await AwaitAssertAsync(async () =>
        {
            statement = await charging.Ask<ChargingStatement>(new GetStatement(StatementSubject.Group, "band"), Timeout);
            Assert.Equal(3 + 2 * 3, statement.TotalSessions);
        }, Dilated(TimeSpan.FromSeconds(10)));
        await Sys.Terminate();

        var csv = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(2), "charging", "--data", _folder.Path, "--group", "band", "--format", "csv");
        Assert.True(csv.ExitCode == 0, csv.Stderr);
        Assert.Equal(statement.Records, ChargingExport.FromCsv(csv.Stdout));

        var jsonFile = _folder.File("p2.json");
        var json = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(2), "charging", "--data", _folder.Path, "--user", "p2", "--format", "json",
            "--out", jsonFile);
        Assert.True(json.ExitCode == 0, json.Stderr);
        var p2 = ChargingExport.FromJson(await File.ReadAllTextAsync(jsonFile));
        Assert.Equal(statement.Records.Where(r => r.UserId == "p2"), p2);
        Assert.Equal(3 * 2000 + 3 + 3 * 28, p2.Sum(r => r.VolumeBytes));

        var both = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "charging", "--data", _folder.Path, "--user", "p2", "--group", "band");
        Assert.NotEqual(0, both.ExitCode);
        Assert.Contains("not both", both.Stdout + both.Stderr);
    }
}
