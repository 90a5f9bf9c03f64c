using Akka.Event;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's CSKMF: holds the group keys of the groups its PN takes part in, and continues the key flows into
/// the PN — it pushes each new epoch to the PNE members (push), or answers their signed requests (pull),
/// wrapping the key for each PNE alone; PNEs acknowledge what they installed.
/// </summary>
public sealed class GatewayCskmf : KeyHolder
{
    private readonly Dictionary<string, PneAttached> _pnes = new(StringComparer.Ordinal);

    // Pushing into the PN waits for both the key (push step 8 from the server) and the SMF's go-ahead, which it
    // gives once its step-7 notices to the PNE members are out, so every PNE hears 7 before 8.
    private readonly Dictionary<string, (GroupKeyDelivery Delivery, GroupKey Key)> _awaitingRelease = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _released = new(StringComparer.Ordinal);
    private readonly Dictionary<(string GroupId, long Epoch), HashSet<string>> _acks = new();
    private ServerEndpoints? _server;
    private readonly DownlinkQueues _downlink;

    public GatewayCskmf(EntityIdentity identity, CpnsSettings settings)
        : base(identity, settings, FlowLeg.ServerToGateway)
    {
        _downlink = new DownlinkQueues("cskmf", settings.DownlinkQueue);
    }

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<GatewayCskmf>(identity, settings);

    protected override void OnOther(object message)
    {
        switch (message)
        {
            case ServerAttached attached:
                _server = attached.Server;
                Trust(attached.Server.ServerId, attached.Server.Keys, attached.Server.ServerId, attached.Server.Keys.Signing);
                break;
            case PneAttached attached:
                _pnes[attached.DeviceId] = attached;
                Link.Guard.Trust(attached.DeviceId, attached.Keys.Signing);
                break;
            case PneReachability reachability:
                _downlink.Update(reachability);
                break;
            case GetDownlinkStats:
                Sender.Tell(_downlink.Stats());
                break;
            case PneDetached detached:
                _downlink.Forget(detached.DeviceId);
                _pnes.Remove(detached.DeviceId);
                Pairwise.Forget(detached.DeviceId);
                Link.Guard.Forget(detached.DeviceId);
                break;
            case DeliverToPne deliver:
                if (Ring.Current(deliver.GroupId) is { } held && held.LocalMembers.Contains(deliver.DeviceId) &&
                    _pnes.TryGetValue(deliver.DeviceId, out var target))
                    SendDown(target, Link.Seal(WrapFor(held.Key, target, DeliveryMode.Push, held.Announcement)), deliver.GroupId,
                        held.Key.Epoch);
                break;
            case GetKeyAcks query:
                var current = Ring.Current(query.GroupId);
                var acked = current is null ? [] : _acks.GetValueOrDefault((query.GroupId, current.Key.Epoch)) ?? [];
                Sender.Tell(new KeyAcks(query.GroupId, current?.Key.Epoch ?? 0, acked.Order(StringComparer.Ordinal).ToList(),
                    (current?.LocalMembers ?? []).Where(m => m != Identity.DeviceId && !acked.Contains(m))
                    .Order(StringComparer.Ordinal).ToList()));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void OnOtherSigned(object message, string senderId)
    {
        if (!_downlink.IsReachable(senderId))
            Context.Parent.Tell(new UplinkSeen(senderId));
        switch (message)
        {
            case GroupKeyRequest request:
                ServePneRequest(request, senderId);
                break;
            case GroupKeyAck ack when ack.HolderId == senderId:
                if (!_acks.TryGetValue((ack.GroupId, ack.Epoch), out var acked))
                    _acks[(ack.GroupId, ack.Epoch)] = acked = new HashSet<string>(StringComparer.Ordinal);
                acked.Add(senderId);
                break;
            default:
                base.OnOtherSigned(message, senderId);
                break;
        }
    }

    protected override void Acknowledge(GroupKeyDelivery delivery)
    {
        if (_server is not null)
            Link.Send(_server.Cskmf, new GroupKeyAck(delivery.GroupId, delivery.Epoch, Identity.DeviceId));
    }

    protected override void OnExpect(ExpectGroupKey release)
    {
        if (_awaitingRelease.TryGetValue(release.GroupId, out var waiting) && waiting.Key.Epoch == release.Epoch)
        {
            _awaitingRelease.Remove(release.GroupId);
            PushIntoPn(waiting.Delivery, waiting.Key);
        }
        else
        {
            _released[release.GroupId] = release.Epoch;
        }
    }

    protected override void OnInstalled(GroupKeyDelivery delivery, GroupKey key, bool pulled)
    {
        foreach (var stale in _acks.Keys.Where(k => k.GroupId == key.GroupId && k.Epoch < key.Epoch - 1).ToList())
            _acks.Remove(stale);
        var selfIsMember = delivery.LocalMembers.Contains(Identity.DeviceId);
        if (selfIsMember)
            PublishInstalled(key, pulled, isMember: true);

        if (pulled)
        {
            FlowTrace.Send(Context, Smf, new GroupKeyAvailable(key.GroupId, key.Epoch), key.GroupId, key.Epoch, 11,
                FlowKind.Pull, FlowLeg.ServerToGateway);
            if (delivery.Mode == DeliveryMode.Pull)
                return;
        }

        if (_released.TryGetValue(key.GroupId, out var released) && released == key.Epoch)
        {
            _released.Remove(key.GroupId);
            PushIntoPn(delivery, key);
        }
        else
        {
            _awaitingRelease[key.GroupId] = (delivery, key);
        }
    }

    /// <summary>Push continues into the PN: step 8 to every PNE member reached through this PN GW.</summary>
    private void PushIntoPn(GroupKeyDelivery delivery, GroupKey key)
    {
        foreach (var member in delivery.LocalMembers)
        {
            if (member == Identity.DeviceId)
                continue;
            if (!_pnes.TryGetValue(member, out var pne))
            {
                Log.Warning("{0}: member {1} of {2} is not attached here; not pushed", Identity.DeviceId, member, key.GroupId);
                continue;
            }

            SendDown(pne, Link.Seal(WrapFor(key, pne, delivery.Mode, delivery.Announcement)), key.GroupId, key.Epoch);
        }
    }

    /// <summary>Push step 8 inside the PN, now or when the PNE is reachable again.</summary>
    private void SendDown(PneAttached pne, SignedEnvelope delivery, string groupId, long epoch) =>
        _downlink.Send(pne.DeviceId, () =>
            FlowTrace.Send(Context, pne.Endpoints.Cskmf, delivery, groupId, epoch, 8, FlowKind.Push, FlowLeg.GatewayToPne));

    /// <summary>Pull steps 9 → 10 inside the PN.</summary>
    private void ServePneRequest(GroupKeyRequest request, string senderId)
    {
        if (request.RequesterId != senderId)
        {
            Link.Send(Sender, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.NotAuthorized,
                $"request names {request.RequesterId} but is signed by {senderId}"));
            return;
        }

        var (held, error) = Ring.Get(request.GroupId, request.Epoch, NowMs, Settings.KeyGraceWindow);
        if (held is null)
        {
            Link.Send(Sender, new GroupKeyRefused(request.GroupId, request.Epoch, error!.Value,
                $"{Identity.DeviceId} cannot give {request.GroupId}#{request.Epoch}"));
            return;
        }

        if (!held.LocalMembers.Contains(senderId) || !_pnes.TryGetValue(senderId, out var pne))
        {
            Log.Info("{0}: refused {1}#{2} to non-member {3}", Identity.DeviceId, request.GroupId, request.Epoch, senderId);
            Link.Send(Sender, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.NotAuthorized,
                $"{senderId} is not a member of {request.GroupId}#{request.Epoch} here"));
            return;
        }

        FlowTrace.Send(Context, Sender, Link.Seal(WrapFor(held.Key, pne, DeliveryMode.Pull, held.Announcement)), request.GroupId,
            request.Epoch, 10, FlowKind.Pull, FlowLeg.GatewayToPne);
    }

    private GroupKeyDelivery WrapFor(GroupKey key, PneAttached pne, DeliveryMode mode, EpochAnnouncement announcement)
    {
        var pairwise = Pairwise.KeyFor(pne.DeviceId, pne.Keys.Agreement);
        return new GroupKeyDelivery(key.GroupId, key.Epoch, mode, Identity.DeviceId, pne.DeviceId,
            key.WrapUnder(pairwise, pne.DeviceId), key.KeyCheck, [pne.DeviceId], announcement);
    }
}
