using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Common;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's Service Management Function: learns from the server which of its PN's entities are in which
/// service group (step 7), has its SECA acquire pulled keys (step 8), and carries the group notices on into
/// the PN for its PNE members. Removed members are told to drop the group's keys.
/// </summary>
public sealed class GatewaySmf : UntypedActor, IWithTimers
{
    private sealed record FanOut(string GroupId) : INoSerializationVerificationNeeded;

    private readonly HashSet<string> _fanOutDue = new(StringComparer.Ordinal);

    private sealed class LocalGroupState(DeliveryMode mode)
    {
        public DeliveryMode Mode { get; } = mode;
        public long Epoch { get; set; }
        public NoticeKind Kind { get; set; }
        public IReadOnlyList<string> LocalMembers { get; set; } = [];
        public IActorRef KeyLocation { get; set; } = ActorRefs.Nobody;
    }

    private readonly string _gatewayId;
    private readonly IActorRef _cskmf;
    /// <summary>The CSKMF's SECA, introduced by the CSKMF.</summary>
    private readonly Sibling _seca = new("seca");
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, LocalGroupState> _groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PneEndpoints> _pnes = new(StringComparer.Ordinal);

    // A pushed epoch the CSKMF reported missing is pulled once (the CSKMF may report it twice: when a rekey broadcast
    // cannot be followed, and when the push is overdue); one reported before its notice came is pulled when it comes.
    private readonly Dictionary<string, long> _fallbackPulled = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _missingAhead = new(StringComparer.Ordinal);
    private readonly SecureLink _link;
    private readonly CpnsSettings _settings;
    private readonly DownlinkQueues _downlink;
    private string? _serverId;

    public GatewaySmf(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings)
    {
        _settings = settings;
        _downlink = new DownlinkQueues("smf", settings.Connections.DownlinkQueue);
        _gatewayId = identity.DeviceId;
        _cskmf = cskmf;
        cskmf.Tell(SiblingsWanted.Instance, Self);
        _link = new SecureLink(Context, identity, settings, _log);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings) =>
        Akka.Actor.Props.Create<GatewaySmf>(identity, cskmf, settings);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SiblingIs when _seca.TryMeet(message, Sender, _cskmf):
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                {
                    if (senderId == _serverId && inner is GroupNotice notice)
                        OnNotice(notice);
                    else if (senderId == _serverId && inner is GroupDeletedNotice deleted)
                        OnDeleted(deleted);
                    else if (inner is SyncGroups sync && sync.DeviceId == senderId && _pnes.TryGetValue(senderId, out var pne))
                    {
                        HeardFrom(senderId);
                        ResyncPne(senderId, pne);
                    }
                    else
                        _log.Warning("{0}: unexpected signed {1} from {2}", _gatewayId, inner.GetType().Name, senderId);
                }

                break;
            case PneAttached attached:
                _pnes[attached.DeviceId] = attached.Endpoints;
                _link.Guard.Trust(attached.DeviceId, attached.Keys.Signing);
                break;
            case PneDetached detached:
                _pnes.Remove(detached.DeviceId);
                _link.Guard.Forget(detached.DeviceId);
                _downlink.Forget(detached.DeviceId);
                ForgetMember(detached.DeviceId);
                break;
            case PneReachability reachability:
                _downlink.Update(reachability);
                break;
            case GetDownlinkStats:
                Sender.Tell(_downlink.Stats());
                break;
            case ServerAttached attached:
                _serverId = attached.Server.ServerId;
                _link.Guard.Trust(attached.Server.ServerId, attached.Server.Keys.Signing);
                // Registered (again): catch up with the current epoch of our groups.
                _link.Send(attached.Server.Smf, new SyncGroups(_gatewayId));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            case FanOut fanOut:
                if (_fanOutDue.Remove(fanOut.GroupId) && _groups.TryGetValue(fanOut.GroupId, out var due))
                    CarryIntoPn(fanOut.GroupId, due);
                break;
            case GroupKeyAvailable available:
                OnKeyAvailable(available);
                break;
            case GroupKeyMissing missing:
                if (_groups.TryGetValue(missing.GroupId, out var waiting) && waiting.Epoch == missing.Epoch)
                    PullMissing(missing.GroupId, waiting);
                else if (waiting is null || waiting.Epoch < missing.Epoch)
                    _missingAhead[missing.GroupId] = missing.Epoch;
                break;
            case GetLocalGroups:
                Sender.Tell(new LocalGroups(_gatewayId, _groups
                    .OrderBy(kv => kv.Key, StringComparer.Ordinal)
                    .Select(kv => new LocalGroup(kv.Key, kv.Value.Mode, kv.Value.Epoch, kv.Value.LocalMembers)).ToList()));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnNotice(GroupNotice notice)
    {
        if (_groups.TryGetValue(notice.GroupId, out var group) && notice.Epoch <= group.Epoch)
        {
            _log.Debug("{0}: stale notice {1}#{2} ignored (at {3})", _gatewayId, notice.GroupId, notice.Epoch, group.Epoch);
            return;
        }

        // Only a member removed from the group is told its membership ended. One that is no longer reached through here
        // but still a member has moved to another PN GW, which tells it of this epoch: told "ended" by this PN GW before
        // it hears that it is registered there, it would drop the group's keys.
        foreach (var gone in notice.Removed)
        {
            if (gone != _gatewayId && _pnes.TryGetValue(gone, out var pne))
            {
                var ended = new MembershipEnded(notice.GroupId, gone, notice.Epoch);
                _downlink.Send(gone, () => pne.Smf.Tell(_link.SealFor(pne.Smf, ended), Self));
            }
        }

        if (notice.LocalMembers.Count == 0)
        {
            ForgetGroup(notice.GroupId);
            _cskmf.Tell(new DropGroupKeys(notice.GroupId, notice.Epoch, Revoked: false));
            return;
        }

        group ??= _groups[notice.GroupId] = new LocalGroupState(notice.Mode);
        group.Epoch = notice.Epoch;
        group.Kind = notice.Kind;
        group.LocalMembers = notice.LocalMembers;
        group.KeyLocation = notice.KeyLocation;

        if (notice.Mode == DeliveryMode.Pull)
        {
            FlowTrace.Send(Context, _seca, new AcquireGroupKey(notice.GroupId, notice.Epoch, notice.KeyLocation),
                notice.GroupId, notice.Epoch, 8, FlowKind.Pull, FlowLeg.ServerToGateway);
            return;
        }

        if (_missingAhead.Remove(notice.GroupId, out var missing) && missing == notice.Epoch)
            PullMissing(notice.GroupId, group);
        ScheduleFanOut(notice.GroupId, group);
    }

    /// <summary>This PN GW takes no more part in the group (none of its members left here, or the group was deleted).</summary>
    private LocalGroupState? ForgetGroup(string groupId)
    {
        _fanOutDue.Remove(groupId);
        Timers.Cancel(("fan-out", groupId));
        _fallbackPulled.Remove(groupId);
        _missingAhead.Remove(groupId);
        return _groups.Remove(groupId, out var group) ? group : null;
    }

    /// <summary>A pushed epoch that did not come (or could not be followed) is pulled instead, once.</summary>
    private void PullMissing(string groupId, LocalGroupState group)
    {
        if (_fallbackPulled.TryGetValue(groupId, out var pulled) && pulled == group.Epoch)
            return;
        _fallbackPulled[groupId] = group.Epoch;
        FlowTrace.Send(Context, _seca, new AcquireGroupKey(groupId, group.Epoch, group.KeyLocation), groupId, group.Epoch, 8,
            FlowKind.Pull, FlowLeg.ServerToGateway);
    }

    /// <summary>
    /// The PN hears of a new epoch once the notices already waiting here are read (or after the coalescing window, when
    /// one is set), and only of the newest if more came meanwhile: under a burst of changes its members are not sent keys
    /// that are already superseded, and without a window no epoch waits for a timer.
    /// </summary>
    private void ScheduleFanOut(string groupId, LocalGroupState group)
    {
        if (!_fanOutDue.Add(groupId))
            return;
        if (_settings.Keys.PnFanoutCoalesce <= TimeSpan.Zero)
            Self.Tell(new FanOut(groupId));
        else
            Timers.StartSingleTimer(("fan-out", groupId), new FanOut(groupId), _settings.Keys.PnFanoutCoalesce);
    }

    private void CarryIntoPn(string groupId, LocalGroupState group)
    {
        NotifyPneMembers(groupId, group);
        if (group.Mode == DeliveryMode.Push)
            _cskmf.Tell(new ExpectGroupKey(groupId, group.Epoch, group.LocalMembers));
    }

    /// <summary>Pull: once this PN GW holds the key, its PNE members are told where to pull it from.</summary>
    private void OnKeyAvailable(GroupKeyAvailable available)
    {
        if (_groups.TryGetValue(available.GroupId, out var group) && group.Epoch == available.Epoch &&
            group.Mode == DeliveryMode.Pull)
            ScheduleFanOut(available.GroupId, group);
    }

    /// <summary>Step 7 inside the PN: the key lives at this PN GW's CSKMF.</summary>
    private void NotifyPneMembers(string groupId, LocalGroupState group)
    {
        foreach (var member in group.LocalMembers)
        {
            if (member == _gatewayId)
                continue;
            if (!_pnes.TryGetValue(member, out var pne))
            {
                _log.Warning("{0}: member {1} of {2} is not attached here", _gatewayId, member, groupId);
                continue;
            }

            var notice = new GroupNotice(groupId, group.Epoch, group.Mode, group.Kind, _cskmf, [member], []);
            var epoch = group.Epoch;
            var kind = group.Mode.ToFlowKind();
            _downlink.Send(member, () => FlowTrace.Send(Context, pne.Smf, _link.SealFor(pne.Smf, notice), groupId, epoch, 7, kind,
                FlowLeg.GatewayToPne));
        }
    }

    /// <summary>A PNE that left this PN is no local member any more; a group left with none here drops its keys.</summary>
    private void ForgetMember(string pneId)
    {
        foreach (var (groupId, group) in _groups.Where(g => g.Value.LocalMembers.Contains(pneId)).ToList())
        {
            group.LocalMembers = group.LocalMembers.Where(m => m != pneId).ToList();
            if (group.LocalMembers.Count > 0)
                continue;
            ForgetGroup(groupId);
            _cskmf.Tell(new DropGroupKeys(groupId, group.Epoch, Revoked: false));
        }
    }

    /// <summary>An uplink from a PNE held as unreachable: connections decides it is back.</summary>
    private void HeardFrom(string pneId)
    {
        if (!_downlink.IsReachable(pneId))
            Context.Parent.Tell(new UplinkSeen(pneId));
    }

    /// <summary>A PNE that registered again hears the current epoch of its groups here; push groups push it.</summary>
    private void ResyncPne(string pneId, PneEndpoints pne)
    {
        foreach (var (groupId, group) in _groups.Where(g => g.Value.LocalMembers.Contains(pneId)))
        {
            FlowTrace.Send(Context, pne.Smf,
                _link.SealFor(pne.Smf, new GroupNotice(groupId, group.Epoch, group.Mode, NoticeKind.Updated, _cskmf, [pneId], [])), groupId,
                group.Epoch, 7, group.Mode.ToFlowKind(), FlowLeg.GatewayToPne);
            if (group.Mode == DeliveryMode.Push)
                _cskmf.Tell(new DeliverToPne(groupId, pneId));
        }
    }

    private void OnDeleted(GroupDeletedNotice deleted)
    {
        var group = ForgetGroup(deleted.GroupId);
        FlowTrace.Send(Context, _cskmf, new DropGroupKeys(deleted.GroupId, deleted.FinalEpoch, Revoked: true),
            deleted.GroupId, deleted.FinalEpoch, 6, FlowKind.Revoke, FlowLeg.ServerToGateway);
        foreach (var member in group?.LocalMembers ?? [])
        {
            if (member != _gatewayId && _pnes.TryGetValue(member, out var pne))
            {
                _downlink.Send(member, () => FlowTrace.Send(Context, pne.Smf, _link.SealFor(pne.Smf, deleted), deleted.GroupId, deleted.FinalEpoch, 5,
                    FlowKind.Revoke, FlowLeg.GatewayToPne));
            }
        }
    }
}
