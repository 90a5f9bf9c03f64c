using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>One PN GW's copy of an epoch's key, as the server's CSKMF decided it: for whom, sent to which actor, as which flow step.</summary>
public sealed record KeyWrapOrder(KeyDeliveryTarget Target, IActorRef To, LkhPathKeys? Path, int Step, FlowKind Kind);

/// <summary>
/// The CSKMF asks a group's wrapper for an epoch's key wrapped for each order. A rekey broadcast of the same push rides
/// along so that it leaves after the deliveries asked before it and before those asked after it.
/// </summary>
public sealed record WrapGroupKey(
    GroupEpochIssuedEvent Issued,
    IReadOnlyList<KeyWrapOrder> Orders,
    GroupRekeyBroadcast? Broadcast = null,
    IReadOnlyList<KeyDeliveryTarget>? BroadcastTo = null) : INoSerializationVerificationNeeded;

/// <summary>The wrapper's answer: one delivery per order, in the orders' order.</summary>
public sealed record GroupKeyWrapped(WrapGroupKey Job, IReadOnlyList<GroupKeyDelivery> Deliveries) : INoSerializationVerificationNeeded;

/// <summary>
/// The public-key work of one service group at the server's CSKMF (design §9): the CSKMF decides who gets an epoch and
/// seals what goes out; this child agrees and wraps — one X25519 agreement and AEAD per PN GW, and its LKH path — so that
/// groups are wrapped side by side on every core while the CSKMF goes on taking requests. Pure work on what the order
/// carries: it holds no state of its own.
/// </summary>
public sealed class GroupKeyWrapper(KeyEncryptionKey kek, PairwiseKeys pairwise) : UntypedActor
{
    public static Props Props(KeyEncryptionKey kek, PairwiseKeys pairwise) =>
        Akka.Actor.Props.Create(() => new GroupKeyWrapper(kek, pairwise));

    protected override void OnReceive(object message)
    {
        if (message is WrapGroupKey job)
            Sender.Tell(new GroupKeyWrapped(job, Wrap(job)));
        else
            Unhandled(message);
    }

    private GroupKeyDelivery[] Wrap(WrapGroupKey job)
    {
        var issued = job.Issued;
        var deliveries = new GroupKeyDelivery[job.Orders.Count];
        if (deliveries.Length == 0)
            return deliveries;
        using var key = kek.Unwrap(issued.GroupId, issued.Epoch, issued.KeyUnderKek);
        for (var i = 0; i < deliveries.Length; i++)
        {
            var (target, _, pathKeys, _, _) = job.Orders[i];
            using (pathKeys)
            {
                var path = pathKeys?.SealFor(pairwise, target.GatewayId, target.GatewayAgreementKey);
                deliveries[i] = key.DeliveryFor(pairwise, target.GatewayId, target.GatewayAgreementKey, issued.Mode, target.LocalMembers,
                    issued.Announcement, path);
            }
        }

        return deliveries;
    }
}
