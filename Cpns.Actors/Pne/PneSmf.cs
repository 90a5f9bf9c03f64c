using Cpns.Actors.Common;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE's Service Management Function: learns of its groups from its PN GW (step 7 inside the PN, signed by
/// the PN GW), has its SECA pull the key when the group is pull-mode (step 8), and drops keys when it leaves or
/// the group ends.
/// </summary>
public sealed class PneSmf : UntypedActor
{
    private readonly string _deviceId;
    private readonly IActorRef _cskmf;
    /// <summary>The CSKMF's SECA, introduced by the CSKMF.</summary>
    private readonly Sibling _seca = new("seca");
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly Dictionary<string, LocalGroup> _groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _keyLocations = new(StringComparer.Ordinal);
    private string? _gatewayId;
    private readonly bool _pullOnDemand;

    public PneSmf(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings)
    {
        _deviceId = identity.DeviceId;
        _cskmf = cskmf;
        cskmf.Tell(SiblingsWanted.Instance, Self);
        _link = new SecureLink(Context, identity, settings, _log);
        _pullOnDemand = settings.Keys.PullOnDemand;
    }

    public static Props Props(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings) =>
        Akka.Actor.Props.Create<PneSmf>(identity, cskmf, settings).WithMailbox(CompactMailbox.Id);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SiblingIs when _seca.TryMeet(message, Sender, _cskmf):
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                {
                    if (senderId == _gatewayId)
                        OnFromGateway(inner);
                    else
                        _log.Warning("{0}: signed {1} from {2}, not from its PN GW; ignored", _deviceId, inner.GetType().Name, senderId);
                }

                break;
            case GatewayAttached attached:
                _gatewayId = attached.GatewayId;
                _link.Guard.Trust(attached.GatewayId, attached.Keys.Signing);
                // Registered (again): catch up with the current epoch of our groups.
                _link.Send(attached.Gateway.Smf, new SyncGroups(_deviceId));
                break;
            case GroupKeyAvailable:
                break;
            case GroupKeyMissing missing:
                if (_groups.TryGetValue(missing.GroupId, out var waiting) && waiting.Epoch == missing.Epoch)
                    FlowTrace.Send(Context, _seca, new AcquireGroupKey(missing.GroupId, missing.Epoch, _keyLocations[missing.GroupId]),
                        missing.GroupId, missing.Epoch, 8, FlowKind.Pull, FlowLeg.GatewayToPne);
                break;
            case GetLocalGroups:
                Sender.Tell(new LocalGroups(_deviceId, _groups.Values.OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList()));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnFromGateway(object message)
    {
        switch (message)
        {
            case GroupNotice notice:
                if (_groups.TryGetValue(notice.GroupId, out var known) && notice.Epoch <= known.Epoch)
                    return;
                _groups[notice.GroupId] = new LocalGroup(notice.GroupId, notice.Mode, notice.Epoch, notice.LocalMembers);
                _keyLocations[notice.GroupId] = notice.KeyLocation;
                if (notice.Mode == DeliveryMode.Pull && _pullOnDemand)
                    _cskmf.Tell(new KeyOnDemand(notice.GroupId, notice.Epoch, notice.KeyLocation));
                else if (notice.Mode == DeliveryMode.Pull)
                    FlowTrace.Send(Context, _seca, new AcquireGroupKey(notice.GroupId, notice.Epoch, notice.KeyLocation),
                        notice.GroupId, notice.Epoch, 8, FlowKind.Pull, FlowLeg.GatewayToPne);
                else
                    _cskmf.Tell(new ExpectGroupKey(notice.GroupId, notice.Epoch));
                break;
            case MembershipEnded ended when ended.DeviceId == _deviceId:
                _groups.Remove(ended.GroupId);
                _keyLocations.Remove(ended.GroupId);
                // Every epoch through the one that ended the membership: one still on its way is not installed after this.
                _cskmf.Tell(new DropGroupKeys(ended.GroupId, ended.Epoch, Revoked: false, LeftGroup: true));
                break;
            case GroupDeletedNotice deleted:
                _groups.Remove(deleted.GroupId);
                _keyLocations.Remove(deleted.GroupId);
                FlowTrace.Send(Context, _cskmf, new DropGroupKeys(deleted.GroupId, deleted.FinalEpoch, Revoked: true),
                    deleted.GroupId, deleted.FinalEpoch, 6, FlowKind.Revoke, FlowLeg.GatewayToPne);
                break;
            default:
                _log.Warning("{0}: unexpected {1} from its PN GW", _deviceId, message.GetType().Name);
                break;
        }
    }
}
