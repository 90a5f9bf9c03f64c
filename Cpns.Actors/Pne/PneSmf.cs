using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE's Service Management Function: learns of its groups from its PN GW (step 7 inside the PN), has its
/// SECA pull the key when the group is pull-mode (step 8), and drops keys when it leaves or the group ends.
/// </summary>
public sealed class PneSmf : UntypedActor
{
    private readonly string _deviceId;
    private readonly IActorRef _cskmf;
    private readonly SiblingRef _seca;
    private readonly Dictionary<string, LocalGroup> _groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _keyLocations = new(StringComparer.Ordinal);

    public PneSmf(string deviceId, IActorRef cskmf)
    {
        _deviceId = deviceId;
        _cskmf = cskmf;
        _seca = SiblingRef.Of(Context, "cskmf", "seca");
    }

    public static Props Props(string deviceId, IActorRef cskmf) =>
        Akka.Actor.Props.Create(() => new PneSmf(deviceId, cskmf));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GroupNotice notice:
                if (_groups.TryGetValue(notice.GroupId, out var known) && notice.Epoch <= known.Epoch)
                    return;
                _groups[notice.GroupId] = new LocalGroup(notice.GroupId, notice.Mode, notice.Epoch, notice.LocalMembers);
                _keyLocations[notice.GroupId] = notice.KeyLocation;
                if (notice.Mode == DeliveryMode.Pull)
                    FlowTrace.Send(Context, _seca, new AcquireGroupKey(notice.GroupId, notice.Epoch, notice.KeyLocation),
                        notice.GroupId, notice.Epoch, 8, FlowKind.Pull, FlowLeg.GatewayToPne);
                else
                    _cskmf.Tell(new ExpectGroupKey(notice.GroupId, notice.Epoch));
                break;
            case GroupKeyMissing missing:
                if (_groups.TryGetValue(missing.GroupId, out var waiting) && waiting.Epoch == missing.Epoch)
                    FlowTrace.Send(Context, _seca, new AcquireGroupKey(missing.GroupId, missing.Epoch, _keyLocations[missing.GroupId]),
                        missing.GroupId, missing.Epoch, 8, FlowKind.Pull, FlowLeg.GatewayToPne);
                break;
            case GroupKeyAvailable or GatewayAttached:
                break;
            case MembershipEnded ended:
                _groups.Remove(ended.GroupId);
                _keyLocations.Remove(ended.GroupId);
                _cskmf.Tell(new DropGroupKeys(ended.GroupId, long.MaxValue, Revoked: false));
                break;
            case GroupDeletedNotice deleted:
                _groups.Remove(deleted.GroupId);
                _keyLocations.Remove(deleted.GroupId);
                FlowTrace.Send(Context, _cskmf, new DropGroupKeys(deleted.GroupId, deleted.FinalEpoch, Revoked: true),
                    deleted.GroupId, deleted.FinalEpoch, 6, FlowKind.Revoke, FlowLeg.GatewayToPne);
                break;
            case GetLocalGroups:
                Sender.Tell(new LocalGroups(_deviceId, _groups.Values.OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList()));
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
