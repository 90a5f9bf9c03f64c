using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>
/// Key wraps are ephemeral-static: what a wrapper sealed for a recipient opens for that recipient only, proves the
/// wrapper made it, and stays closed to the wrapper's own long-term keys once sent (a taken gateway node holding a Group
/// Key Manager's identity cannot open the deliveries it recorded).
/// </summary>
public sealed class PairwiseKeysTests
{
    private static readonly EntityIdentity Manager = EntityIdentity.Generate("gkm", EntityKind.Server);
    private static readonly EntityIdentity Gateway = EntityIdentity.Generate("g1", EntityKind.PnGateway);
    private static readonly EntityIdentity Other = EntityIdentity.Generate("g2", EntityKind.PnGateway);

    private static GroupKey? OpenedBy(EntityIdentity recipient, Octets wrapped, string wrapperId = "gkm", Octets? wrapperKey = null) =>
        GroupKey.UnwrapFrom(new PairwiseKeys(recipient), wrapperId, wrapperKey ?? Manager.PublicKeys.Agreement, wrapped, "grp", 4);

    [Fact]
    public void The_recipient_opens_the_wrap_and_each_wrap_of_the_same_key_is_new()
    {
        using var key = GroupKey.Generate("grp", 4);
        var wrapper = new PairwiseKeys(Manager);
        var first = key.WrapFor(wrapper, "g1", Gateway.PublicKeys.Agreement);
        var before = CryptoOperations.Now();
        var second = key.WrapFor(wrapper, "g1", Gateway.PublicKeys.Agreement);
        Assert.Equal(1, (CryptoOperations.Now() - before).Agreements); // the epoch's ephemeral with the recipient's key, nothing more

        Assert.Equal(key.KeyCheck, OpenedBy(Gateway, first)?.KeyCheck);
        Assert.Equal(key.KeyCheck, OpenedBy(Gateway, second)?.KeyCheck);
        Assert.NotEqual(first, second); // a fresh nonce
        Assert.Equal(first.Span[..32].ToArray(), second.Span[..32].ToArray()); // one ephemeral key for the epoch's wraps
        using var next = GroupKey.Generate("grp", 5);
        Assert.NotEqual(first.Span[..32].ToArray(), next.WrapFor(wrapper, "g1", Gateway.PublicKeys.Agreement).Span[..32].ToArray());
        Assert.Equal(32 + SealedLayout.Overhead + SealedLayout.KeySize, first.Length);
    }

    [Fact]
    public void The_wrappers_own_long_term_keys_do_not_open_a_recorded_wrap()
    {
        using var key = GroupKey.Generate("grp", 4);
        var wrapper = new PairwiseKeys(Manager);
        var recorded = key.WrapFor(wrapper, "g1", Gateway.PublicKeys.Agreement);

        // Whoever holds the manager's identity (its signing and agreement keys) after the fact: neither as the manager,
        // nor with the static key of the pair, nor by posing as the recipient does the wrap open.
        Assert.Null(GroupKey.UnwrapFrom(new PairwiseKeys(Manager), "g1", Gateway.PublicKeys.Agreement, recorded, "grp", 4));
        var staticKey = wrapper.KeyFor("g1", Gateway.PublicKeys.Agreement);
        Assert.Null(GroupKey.Unwrap(staticKey, recorded, "grp", 4, "g1"));
        Assert.Null(GroupKey.Unwrap(staticKey, Octets.CopyFrom(recorded.Span[32..]), "grp", 4, "g1"));
    }

    [Fact]
    public void A_wrap_opens_only_as_made_by_its_wrapper_for_its_recipient_group_and_epoch()
    {
        using var key = GroupKey.Generate("grp", 4);
        var wrapped = key.WrapFor(new PairwiseKeys(Manager), "g1", Gateway.PublicKeys.Agreement);

        Assert.Null(OpenedBy(Other, wrapped)); // someone else
        Assert.Null(OpenedBy(Gateway, wrapped, "g2", Other.PublicKeys.Agreement)); // taken for another wrapper's
        Assert.Null(GroupKey.UnwrapFrom(new PairwiseKeys(Gateway), "gkm", Manager.PublicKeys.Agreement, wrapped, "grp", 5));
        Assert.Null(GroupKey.UnwrapFrom(new PairwiseKeys(Gateway), "gkm", Manager.PublicKeys.Agreement, wrapped, "other", 4));

        // Made by another entity that names itself the manager: the static part does not match.
        using var forged = GroupKey.Generate("grp", 4);
        Assert.Null(OpenedBy(Gateway, forged.WrapFor(new PairwiseKeys(Other), "g1", Gateway.PublicKeys.Agreement)));
    }

    [Fact]
    public void Changed_short_and_low_order_wraps_are_refused_without_an_exception()
    {
        using var key = GroupKey.Generate("grp", 4);
        var wrapped = key.WrapFor(new PairwiseKeys(Manager), "g1", Gateway.PublicKeys.Agreement).ToArray();

        for (var at = 0; at < wrapped.Length; at += 7)
        {
            var changed = (byte[])wrapped.Clone();
            changed[at] ^= 0x01;
            Assert.Null(OpenedBy(Gateway, Octets.Own(changed)));
        }

        Assert.Null(OpenedBy(Gateway, Octets.Own(wrapped[..40])));
        Assert.Null(OpenedBy(Gateway, Octets.Empty));
        var lowOrder = (byte[])wrapped.Clone();
        Array.Clear(lowOrder, 0, 32); // the all-zero point: an agreement with no secret in it
        Assert.Null(OpenedBy(Gateway, Octets.Own(lowOrder)));
    }
}
