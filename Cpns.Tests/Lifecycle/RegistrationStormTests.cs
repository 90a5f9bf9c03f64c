using System.Diagnostics;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// 10,000 PNEs behind 100 PN GWs; the server restarts; every PN GW notices (its heartbeats go unanswered), waits a
/// random time within the restart spread and registers again with its whole PN as one batch. None is lost, and the
/// arrivals are spread over seconds rather than landing in one.
/// </summary>
public sealed class RegistrationStormTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.loglevel = WARNING
    akka.actor.serialize-messages = off
    cpns.connections.heartbeat-interval = 2s
    cpns.connections.missed-heartbeats = 3
    cpns.connections.restart-spread = 6s
    cpns.registration.batch-window = 20ms
    """)
{
    private const int GatewayCount = 100;
    private const int PnesPerGateway = 100;

    private static int Number(string registrationId) => int.Parse(registrationId[2..]);

    [Fact]
    public async Task Ten_thousand_PNEs_register_again_after_a_server_restart_spread_out_and_none_lost()
    {
        var clock = Stopwatch.StartNew();
        await StartServerAsync();
        for (var g = 0; g < GatewayCount; g++)
            StartGateway($"g{g:D3}");
        // Counted at the server: asking 100 busy PN GWs one by one can outlast an ask timeout on a loaded machine.
        await AwaitAssertAsync(async () =>
            Assert.Equal(GatewayCount, (await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout)).Gateways.Count),
            Dilated(TimeSpan.FromMinutes(2)), TimeSpan.FromSeconds(1));
        for (var g = 0; g < GatewayCount; g++)
            for (var p = 0; p < PnesPerGateway; p++)
                StartPne($"p{g:D3}-{p:D3}", $"g{g:D3}");

        var total = GatewayCount * PnesPerGateway;
        Inventory inventory = null!;
        await AwaitAssertAsync(async () =>
        {
            inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
            Assert.Equal(total, inventory.Pnes.Count);
        }, Dilated(TimeSpan.FromMinutes(4)), TimeSpan.FromSeconds(1));
        var highestBefore = inventory.Pnes.Concat(inventory.Gateways).Max(e => Number(e.RegistrationId));
        Output!.WriteLine($"{total} PNEs registered in {clock.Elapsed.TotalSeconds:0.0}s");

        var batches = CreateTestProbe();
        Sys.EventStream.Subscribe(batches.Ref, typeof(PneBatchRegistered));
        var restartedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await RestartServerAsync();

        // Every PNE is registered again (a fresh registration id), through its own PN GW's batch.
        await AwaitAssertAsync(async () =>
        {
            var now = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
            Assert.Equal(total, now.Pnes.Count);
            Assert.All(now.Pnes, e => Assert.True(Number(e.RegistrationId) > highestBefore, $"{e.DeviceId} was not registered again"));
        }, Dilated(TimeSpan.FromMinutes(3)), TimeSpan.FromSeconds(1));

        // Every PN GW's batch arrives after the restart. (The inventory above can be complete a little earlier: a PN GW
        // that missed heartbeats of the busy server just before the restart registered its PN then, and again after.)
        var arrivals = new List<PneBatchRegistered>();
        await AwaitAssertAsync(async () =>
        {
            while (await batches.ReceiveOneAsync(TimeSpan.FromMilliseconds(200)) is PneBatchRegistered batch)
                arrivals.Add(batch);
            Assert.Equal(GatewayCount, arrivals.Where(a => a.AtMs >= restartedAt).Select(a => a.GatewayId).Distinct().Count());
        }, Dilated(TimeSpan.FromMinutes(1)), TimeSpan.FromSeconds(1));
        arrivals = arrivals.Where(a => a.AtMs >= restartedAt).ToList();
        // Each PN GW registered its whole PN again; one that missed heartbeats of the loaded server, or whose hellos crossed
        // the server's slow answers (each answered challenge is a registration), may have sent it two or three times
        // (registering again is idempotent: the inventory above holds each PNE once).
        Assert.All(arrivals.GroupBy(a => a.GatewayId), g => Assert.InRange(g.Sum(a => a.Count), PnesPerGateway, 3 * PnesPerGateway));
        // Almost every PN GW sent its whole PN as one batch (one may have had a PNE still on its way in).
        Assert.True(arrivals.Count(a => a.Count == PnesPerGateway) >= GatewayCount * 9 / 10);

        var first = arrivals.Min(a => a.AtMs);
        var last = arrivals.Max(a => a.AtMs);
        var perSecond = arrivals.GroupBy(a => (a.AtMs - first) / 1000).OrderBy(g => g.Key)
            .Select(g => $"{g.Key}s: {g.Sum(a => a.Count)}").ToList();
        Output!.WriteLine($"first batch {(first - restartedAt) / 1000.0:0.00}s after the restart, spread over {(last - first) / 1000.0:0.00}s");
        Output!.WriteLine("PNEs registered again per second: " + string.Join(", ", perSecond));
        Assert.True(last - first >= 2000, $"all arrived within {(last - first) / 1000.0:0.00}s");
        Assert.True(arrivals.GroupBy(a => (a.AtMs - first) / 1000).Max(g => g.Sum(a => a.Count)) < total / 2,
            "half the network arrived in the same second");
    }
}
