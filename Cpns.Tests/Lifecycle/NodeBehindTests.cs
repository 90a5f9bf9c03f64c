using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Host.Api;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// A node whose actors wait for a thread longer than <c>cpns.load.busy-lag</c> takes no new work that would queue behind
/// everyone's: the SMF answers a membership change "busy, retry after", a PN GW tells a scanning PNE to come back, both
/// for about as long as the node is behind; once it has caught up, the same requests go through. The devices here have one
/// thread (the server's functions another), and an actor that holds it stands for a node behind on its work.
/// </summary>
public sealed class NodeBehindTests(ITestOutputHelper output) : CpnsTestKit(output, """
    akka.actor.default-dispatcher.executor = fork-join-executor
    akka.actor.default-dispatcher.fork-join-executor { parallelism-min = 1, parallelism-factor = 1.0, parallelism-max = 1 }
    cpns.network-dispatcher.executor = fork-join-executor
    cpns.network-dispatcher.fork-join-executor { parallelism-min = 1, parallelism-factor = 1.0, parallelism-max = 1 }
    cpns.load.busy-lag = 500ms
    cpns.load.lag-probe-interval = 50ms
    """)
{
    private sealed record Hold(TaskCompletionSource Holding, ManualResetEventSlim Release) : INoSerializationVerificationNeeded;

    private sealed class ThreadHog : ReceiveActor
    {
        public ThreadHog() => Receive<Hold>(hold =>
        {
            hold.Holding.SetResult();
            hold.Release.Wait(TimeSpan.FromSeconds(30));
        });
    }

    private readonly ManualResetEventSlim _release = new();

    /// <summary>Holds the devices' one thread until <see cref="Release"/>, and returns once the node is more than a second behind.</summary>
    private async Task HoldUntilBehindAsync()
    {
        var hog = Sys.ActorOf(Props.Create(() => new ThreadHog()));
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hog.Tell(new Hold(holding, _release));
        await holding.Task.WaitAsync(Timeout);
        await AwaitConditionAsync(() => Task.FromResult(DispatcherLag.Of(Sys).Current > TimeSpan.FromSeconds(1)), Timeout,
            TimeSpan.FromMilliseconds(10));
    }

    private void Release() => _release.Set();

    protected override void AfterAll()
    {
        Release();
        base.AfterAll();
        _release.Dispose();
    }

    [Fact]
    public async Task The_operator_API_answers_a_change_asked_of_a_node_behind_with_503_and_when_to_come_back()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        await using var api = await ApiUnderTest.StartAsync(Sys, Server, await Deployment.ChargingOf(ServerActor, Timeout));
        var op = api.Client("op", ApiRole.Operator);
        await HoldUntilBehindAsync();

        var response = await op.PostAsJsonAsync("operator/v1/groups", new NewGroupBody("grp", DeliveryMode.Push, ["p1"]), ApiHost.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("urn:cpns:problem:group:busy", JsonDocument.Parse(body).RootElement.GetProperty("type").GetString());
        Assert.InRange(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, Backpressure.MaxRetryAfterMs / 1000);
        Release();
    }

    [Fact]
    public async Task A_node_behind_turns_new_changes_and_new_PNEs_away_for_as_long_and_takes_them_once_caught_up()
    {
        await StartNetworkAsync(["g1"], new Dictionary<string, string> { ["p1"] = "g1" });
        using var busy = new MetricRecorder("cpns.busy_answers", "function");
        await HoldUntilBehindAsync();
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        var scanner = CreateTestProbe();
        Gateways["g1"].Tell(new DiscoverGateways("p2"), scanner.Ref);

        var rejected = await ExpectMsgAsync<GroupRejected>(Timeout);
        Assert.Equal(("grp", GroupError.Busy), (rejected.GroupId, rejected.Error));
        Assert.InRange(rejected.RetryAfterMs, 1_000, Backpressure.MaxRetryAfterMs); // behind by over a second, up to twice that
        Release(); // the PN GW answers the scan once its thread is free: still behind when it reads the lag
        var turnedAway = await scanner.ExpectMsgAsync<GatewayAdvertisement>(Timeout);
        Assert.True(turnedAway.Busy);
        Assert.InRange(turnedAway.RetryAfterMs, 1_000, Backpressure.MaxRetryAfterMs);
        Assert.Equal((1, 1), (busy["server-smf"], busy["pn-gw-admission"]));

        // Caught up: the change the SMF turned away goes through when asked again, and the PN GW takes PNEs in.
        await AwaitAssertAsync(() => Assert.True(DispatcherLag.Of(Sys).Current < TimeSpan.FromMilliseconds(500)), Timeout);
        Server.Smf.Tell(new LocalRequest(new CreateGroup("grp", "p1", DeliveryMode.Push, ["p1"])), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<GroupAccepted>(Timeout)).Epoch);
        await AwaitAssertAsync(async () => Assert.Equal(1, (await KeyStateAsync(Pnes["p1"], "grp")).CurrentEpoch), Timeout);
        Gateways["g1"].Tell(new DiscoverGateways("p2"), scanner.Ref);
        Assert.False((await scanner.ExpectMsgAsync<GatewayAdvertisement>(Timeout)).Busy);
    }
}
