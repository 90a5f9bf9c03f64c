using System.Diagnostics;
using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// A SECA does not ask a key location again sooner than that location has lately been taking: once its requests have run
/// out of time, a new acquisition waits longer before its first retry, instead of adding to the load of a location that
/// is merely slow.
/// </summary>
public sealed class SecurityAgentRetryTests(ITestOutputHelper output) : CpnsTestKit(output, ConfigurationFactory.ParseString("""
    cpns.keys.pull-retry-initial = 300ms
    cpns.keys.pull-retry-max = 10s
    """))
{
    [Fact]
    public async Task After_requests_that_ran_out_of_time_a_new_acquisition_waits_longer_before_asking_again()
    {
        var location = CreateTestProbe();
        var locationIdentity = EntityIdentity.Generate("g1", EntityKind.PnGateway);
        var seca = Sys.ActorOf(SecurityAgent.Props(EntityIdentity.Generate("p1", EntityKind.Pne), FlowLeg.GatewayToPne, Settings), "seca-p1");
        seca.Tell(new TrustSigner("g1", locationIdentity.PublicKeys.Signing), TestActor);

        // The location answers nothing: the SECA asks three times, and two of its waits ran out (300 ms → 1.2 s learnt).
        seca.Tell(new AcquireGroupKey("slow", 1, location.Ref), TestActor);
        for (var attempt = 1; attempt <= 3; attempt++)
            Assert.Equal("slow", Unseal<GroupKeyRequest>(await location.ExpectMsgAsync<SignedEnvelope>(Timeout)).GroupId);
        seca.Tell(SealAs(locationIdentity, new GroupKeyRefused("slow", 1, KeyError.NotMember, "not a member")), location.Ref);

        // A new acquisition's first retry comes no sooner than what the SECA learnt, not after the 150–300 ms of its backoff.
        seca.Tell(new AcquireGroupKey("next", 1, location.Ref), TestActor);
        Assert.Equal("next", Unseal<GroupKeyRequest>(await location.ExpectMsgAsync<SignedEnvelope>(Timeout)).GroupId);
        var asked = Stopwatch.StartNew();
        Assert.Equal("next", Unseal<GroupKeyRequest>(await location.ExpectMsgAsync<SignedEnvelope>(Timeout)).GroupId);
        Assert.True(asked.Elapsed >= TimeSpan.FromMilliseconds(1100), $"asked again after {asked.ElapsedMilliseconds} ms");
    }
}
