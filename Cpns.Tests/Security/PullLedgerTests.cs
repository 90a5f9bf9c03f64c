using Cpns.Actors.Server;
using Xunit;

namespace Cpns.Tests.Security;

public sealed class PullLedgerTests
{
    [Fact]
    public void A_pull_sent_before_the_answer_to_it_is_covered_and_one_sent_after_is_not()
    {
        var ledger = new PullLedger(TimeSpan.FromSeconds(30));
        Assert.False(ledger.IsCoveredRepeat("grp", 2, "g1", 1_000)); // never answered
        ledger.Answered("grp", 2, "g1", nowMs: 5_000);

        Assert.True(ledger.IsCoveredRepeat("grp", 2, "g1", 1_500)); // a retry that queued behind the first
        Assert.True(ledger.IsCoveredRepeat("grp", 2, "g1", 4_999));
        Assert.False(ledger.IsCoveredRepeat("grp", 2, "g1", 5_000)); // sent once the answer was out: it may be lost
        Assert.False(ledger.IsCoveredRepeat("grp", 2, "g1", 0)); // no send time: always answered
        Assert.False(ledger.IsCoveredRepeat("grp", 3, "g1", 1_500)); // another epoch
        Assert.False(ledger.IsCoveredRepeat("grp", 2, "g2", 1_500)); // another PN GW
    }

    [Fact]
    public void Old_answers_are_forgotten_once_the_ledger_grows()
    {
        var ledger = new PullLedger(TimeSpan.FromSeconds(30), pruneAbove: 3);
        ledger.Answered("a", 1, "g1", 0);
        ledger.Answered("b", 1, "g1", 1_000);
        ledger.Answered("c", 1, "g1", 40_000);
        Assert.Equal(3, ledger.Count);
        ledger.Answered("d", 1, "g1", 41_000); // above the bound: answers older than 30 s go
        Assert.Equal(2, ledger.Count);
        Assert.False(ledger.IsCoveredRepeat("a", 1, "g1", 0 + 1));
        Assert.True(ledger.IsCoveredRepeat("c", 1, "g1", 39_000));
    }

    [Fact]
    public void A_ledger_of_answers_all_still_kept_is_not_scanned_at_every_answer()
    {
        var ledger = new PullLedger(TimeSpan.FromSeconds(30), pruneAbove: 3);
        for (var i = 0; i < 1_000; i++)
            ledger.Answered($"grp-{i}", 1, "g1", 10_000 + i); // all within the 30 s kept

        Assert.Equal(1_000, ledger.Count);
        Assert.Equal(8, ledger.Scans); // at 4, 9, 19, … 639 answers: once per doubling, not 997 times
    }
}
