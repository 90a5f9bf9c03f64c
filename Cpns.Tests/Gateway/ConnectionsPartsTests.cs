using Akka.Actor;
using Cpns.Actors.Gateway;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Gateway;

/// <summary>The parts a PN GW's connections keep their state in, decided without an actor system.</summary>
public sealed class ConnectionsPartsTests
{
    private static readonly IActorRef Nobody = ActorRefs.Nobody;

    private static PneRegistration Registration(string id) =>
        new(id, EntityIdentity.Generate(id, EntityKind.Pne).PublicKeys, null, null, DeviceCapabilities.Pne(), 60,
            new PneEndpoints(Nobody, Nobody, Nobody));

    [Fact]
    public void PnLinks_tell_each_change_once_and_a_sleeping_PNE_apart_from_a_silent_one()
    {
        var links = new PnLinks();

        Assert.Null(links.Heard("p1", 1_000)); // reachable from the start: no change
        Assert.Null(links.FellAsleep("p2")); // never heard: nothing to change
        Assert.Equal(new PneReachability("p1", false, true), links.FellAsleep("p1"));
        Assert.Equal(new PneReachability("p1", true, false), links.Heard("p1", 2_000));
        Assert.Empty(links.Silent(2_000)); // heard at 2,000: not silent since then
        Assert.Equal([new PneReachability("p1", false, false)], links.Silent(2_001));
        Assert.Empty(links.Silent(5_000)); // told once
        Assert.Equal(new Reachability("p1", false, false, 2_000), links.Of("p1"));
        links.Forget("p1");
        Assert.Equal(new Reachability("p1", false, false, 0), links.Of("p1"));
    }

    [Fact]
    public void PnRegistrations_batch_each_waiting_PNE_once_and_resend_only_those_still_waiting()
    {
        var registrations = new PnRegistrations(TimeSpan.FromSeconds(30));
        registrations.Wait(Registration("p1"), Nobody);
        registrations.Wait(Registration("p2"), Nobody);

        var first = registrations.NextBatch()!.Value;
        Assert.Equal(["p1", "p2"], first.Pnes.Select(p => p.DeviceId));
        Assert.Null(registrations.NextBatch()); // both in flight
        registrations.Wait(Registration("p3"), Nobody);
        var second = registrations.NextBatch()!.Value;
        Assert.Equal(["p3"], second.Pnes.Select(p => p.DeviceId));

        Assert.True(registrations.TakeWaiting("p1", out _));
        Assert.Equal(["p2"], registrations.TimedOut(first.BatchId)!.Select(p => p.DeviceId));
        Assert.Equal(TimeSpan.FromSeconds(60), registrations.ReplyTimeout); // a wait that ran out doubles

        Assert.Equal([first.BatchId], registrations.Answered(new HashSet<string> { "p1", "p2" }));
        Assert.Null(registrations.TimedOut(first.BatchId)); // answered: nothing to resend
        Assert.True(registrations.TakeWaiting("p3", out _));
        Assert.Null(registrations.TimedOut(second.BatchId)); // nobody in it waits any more
    }

    [Fact]
    public void PnRegistrations_keep_the_latest_busy_wait()
    {
        var registrations = new PnRegistrations(TimeSpan.FromSeconds(30));
        registrations.BusyUntil(5_000);
        registrations.BusyUntil(3_000);
        Assert.Equal(1_000, registrations.BusyForMs(4_000));
        Assert.Equal(0, registrations.BusyForMs(6_000));
    }

    [Fact]
    public void GatewayRegistration_answers_only_its_last_four_hellos_and_a_busy_answer_costs_no_attempt()
    {
        var link = new GatewayRegistration();
        var nonces = Enumerable.Range(0, 5).Select(_ => link.NextHello()).ToList();
        Assert.Equal(5, link.Attempts);
        link.AttemptNotCounted();
        Assert.Equal(4, link.Attempts);

        AuthChallenge ChallengeFor(Octets nonce) =>
            new("g1", "cpns-server", null!, nonce, Octets.Empty, Octets.Empty);
        Assert.False(link.AnswersOurHello(ChallengeFor(nonces[0]), "g1")); // the oldest is forgotten
        Assert.True(link.AnswersOurHello(ChallengeFor(nonces[1]), "g1"));
        Assert.False(link.AnswersOurHello(ChallengeFor(nonces[4]), "g2")); // not for this PN GW
    }

    [Fact]
    public void GatewayRegistration_hands_out_each_refresh_once_and_finds_whom_to_tell()
    {
        var link = new GatewayRegistration();
        link.RefreshWanted("p1", 60, Nobody);
        link.RefreshWanted("p1", 90, Nobody); // the later ask replaces the earlier
        Assert.Equal([new LeaseRefresh("p1", 90)], link.TakeRefreshes());
        Assert.Empty(link.TakeRefreshes());
        Assert.True(link.RefreshAnswered("p1", out _));
        Assert.False(link.RefreshAnswered("p1", out _));

        var alert = link.AlertAsked(Nobody, 41);
        Assert.True(link.AlertAnswered(alert, out var asked));
        Assert.Equal(41, asked.TheirRequestId);
        Assert.False(link.AlertAnswered(alert, out _));
    }

    [Fact]
    public void PnMoves_take_a_PN_over_with_consents_that_came_early_and_end_with_the_last_PNE()
    {
        var moves = new PnMoves(earlyConsentsKept: 1);
        moves.Start(Nobody, "g-old", Nobody);
        Assert.False(moves.IsForCurrent(Consent("p1", Octets.Empty), "g-new")); // no nonce yet
        var nonce = Octets.Own([1, 2, 3]);
        Assert.NotNull(moves.NonceIssued(nonce));
        Assert.Null(moves.NonceIssued(nonce)); // only the first nonce counts

        var early = Consent("p1", nonce);
        Assert.True(moves.IsForCurrent(early, "g-new"));
        Assert.Null(moves.Consented(early)); // before the old PN GW's table: kept
        Assert.Null(moves.Consented(Consent("p9", nonce))); // over the bound: not kept

        Assert.Equal([early], moves.HandedOver([Registration("p1"), Registration("p2")]));
        Assert.Equal("p1", moves.Consented(early)!.DeviceId);
        Assert.Equal(1, moves.AwaitingConsent);
        Assert.Equal(["p2"], moves.ConsentTimedOut());
        Assert.Equal(1, moves.StillComing);
        Assert.True(moves.ArrivedLast("p1"));
        Assert.Equal("g-old", moves.Finish()!.OldGatewayId);
        Assert.Null(moves.Current);
    }

    private static MoveConsent Consent(string deviceId, Octets nonce) =>
        new(deviceId, "g-old", "g-new", nonce, 0, null!, Octets.Empty);
}
