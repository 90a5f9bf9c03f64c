using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>An epoch announcement every holder of a group checks: its signature is checked once per process, a forgery every time.</summary>
public sealed class StatementVerificationTests
{
    private readonly EntityIdentity _manager = EntityIdentity.Generate("kmc-1", EntityKind.Server);
    private readonly Octets _keyCheck = Octets.Own([1, 2, 3, 4, 5, 6, 7, 8]);

    [Fact]
    public void A_good_announcement_is_checked_once_however_many_holders_check_it()
    {
        var announcement = EpochAnnouncement.Sign(_manager, "g-once", 7, _keyCheck);
        var before = CryptoOperations.Now();
        for (var holder = 0; holder < 50; holder++)
        {
            var holdersCopy = announcement with { Signature = Octets.CopyFrom(announcement.Signature.Span) };
            Assert.True(holdersCopy.VerifiedBy(_manager.PublicKeys.Signing));
        }
        Assert.Equal(1, (CryptoOperations.Now() - before).Verifications);
    }

    [Fact]
    public void A_forged_or_changed_announcement_is_refused_at_every_check()
    {
        var good = EpochAnnouncement.Sign(_manager, "g-forged", 7, _keyCheck);
        Assert.True(good.VerifiedBy(_manager.PublicKeys.Signing));

        var otherEpoch = good with { Epoch = 8 };
        var otherKey = EntityIdentity.Generate("kmc-2", EntityKind.Server).PublicKeys.Signing;
        var badSignature = good.Signature.ToArray();
        badSignature[5] ^= 1;
        var before = CryptoOperations.Now();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            Assert.False(otherEpoch.VerifiedBy(_manager.PublicKeys.Signing));
            Assert.False(good.VerifiedBy(otherKey));
            Assert.False((good with { Signature = Octets.Own(badSignature) }).VerifiedBy(_manager.PublicKeys.Signing));
        }

        Assert.Equal(9, (CryptoOperations.Now() - before).Verifications);
        Assert.False((good with { Signature = Octets.Own(new byte[63]) }).VerifiedBy(_manager.PublicKeys.Signing));
    }
}
