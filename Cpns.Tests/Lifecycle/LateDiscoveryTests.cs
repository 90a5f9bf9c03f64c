using Akka.Actor;
using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Lifecycle;

/// <summary>
/// A PN GW busy with a crowd of PNEs answers their scans late, not never: a PNE that heard nobody when its scan window
/// ended takes the first answer that comes, instead of waiting for its next registration attempt.
/// </summary>
public sealed class LateDiscoveryTests(ITestOutputHelper output) : CpnsTestKit(output, ConfigurationFactory.ParseString("""
    cpns.discovery.scan-window = 50ms
    # A PNE that waited for its next attempt would not register within the test's timeout.
    cpns.registration.retry-initial = 60s
    cpns.registration.retry-max = 60s
    """))
{
    /// <summary>Stands for the radio between a PNE and a PN GW that is slow to answer: it hands each scan on late.</summary>
    private sealed class SlowAir : ReceiveActor
    {
        public SlowAir(IActorRef gateway, TimeSpan delay)
        {
            Receive<DiscoverGateways>(scan =>
                Context.System.Scheduler.ScheduleTellOnce(delay, gateway, scan, Sender));
            ReceiveAny(message => gateway.Forward(message));
        }
    }

    [Fact]
    public async Task A_PNE_whose_only_PN_GW_answers_after_the_scan_window_registers_through_it_at_once()
    {
        await StartServerAsync();
        var gateway = StartGateway("g1");
        await AwaitRegisteredAsync([gateway]);
        var slow = Sys.ActorOf(Props.Create(typeof(SlowAir), gateway, Dilated(TimeSpan.FromMilliseconds(500))), "slow-air");

        var identity = Identities["p1"] = EntityIdentity.Generate("p1", EntityKind.Pne);
        Pnes["p1"] = Deployment.StartPne(Sys, identity, Secrets.TrustAnchor, slow, Settings,
            enrolmentToken: EnrolmentTokenFor("p1", EntityKind.Pne));

        await AwaitRegisteredAsync([Pnes["p1"]]);
        var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
        Assert.Equal("g1", inventory.Pnes.Single(e => e.DeviceId == "p1").GatewayId);
    }
}
