using Akka.Event;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Common;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's CSKMF: holds the group keys of the groups its PN takes part in, and continues the key flows into
/// the PN — it pushes each new epoch to the PNE members (push), or answers their signed requests (pull),
/// wrapping the key for each PNE alone; PNEs acknowledge what they installed. For a large push group it is a leaf of
/// the server's logical key hierarchy: it holds its path keys and follows each rekey broadcast to the new group key.
/// </summary>
public sealed class GatewayCskmf : KeyHolder
{
    private readonly Dictionary<string, PneAttached> _pnes = new(StringComparer.Ordinal);

    // Pushing into the PN waits for both the key (push step 8 from the server) and the SMF's go-ahead, which it
    // gives once its step-7 notices to the PNE members are out, so every PNE hears 7 before 8.
    private readonly Dictionary<string, InstalledKey> _awaitingRelease = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ExpectGroupKey> _released = new(StringComparer.Ordinal);

    // LKH groups: this PN GW's place in each tree; keys from a broadcast waiting for the SMF to name their local
    // members (the broadcast is the same for every PN GW, so it names none).
    private readonly Dictionary<string, LkhMember> _trees = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (GroupKey Key, EpochAnnouncement Announcement)> _unplaced = new(StringComparer.Ordinal);
    private readonly Dictionary<(string GroupId, long Epoch), HashSet<string>> _acks = new();
    // PNE pulls of an epoch this PN GW does not hold yet (its own key is still on the way): answered once it is here.
    private readonly Dictionary<string, Dictionary<string, (GroupKeyRequest Request, IActorRef ReplyTo)>> _heldPulls =
        new(StringComparer.Ordinal);
    private ServerEndpoints? _server;
    private KnownKeyManagers? _managers;
    private readonly DownlinkQueues _downlink;

    public GatewayCskmf(EntityIdentity identity, CpnsSettings settings)
        : base(identity, settings, FlowLeg.ServerToGateway)
    {
        _downlink = new DownlinkQueues("cskmf", settings.Connections.DownlinkQueue);
    }

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<GatewayCskmf>(identity, settings);

    /// <summary>In the distributed topology the Group Key Managers wrap what they push, each met by its KMC credential.</summary>
    protected override Func<object, Octets?>? WrapperKeyOf => _server is { KeyManagers: true } ? _managerKeyOf ??= ManagerKeyIn : null;

    private Func<object, Octets?>? _managerKeyOf;

    /// <summary>A Group Key Manager's delivery or broadcast names its keys through its KMC credential.</summary>
    private Octets? ManagerKeyIn(object message)
    {
        if (_server is not { } server || _managers is null || message is not IFromKeyManager { ManagerCredential: { } credential })
            return null;
        if (_managers.Check(credential, Context.System.Scheduler.Now) is not { } manager)
        {
            Link.CountRefusal("ManagerNotVouched");
            Log.Warning("{0}: a {1} names a credential that is not one of {2}'s key managers", Identity.DeviceId,
                message.GetType().Name, server.ServerId);
            return null;
        }

        TrustWrapper(manager.DeviceId, manager.Keys);
        return manager.Keys.Signing;
    }

    protected override void OnOther(object message)
    {
        switch (message)
        {
            case ServerAttached attached:
                _server = attached.Server;
                _managers = new KnownKeyManagers(attached.Verifier, attached.Server.ServerId);
                // The server wraps what members pull; in the distributed topology the Group Key Managers wrap what they
                // push, each trusted once its KMC credential checks out (ManagerKeyIn).
                Trust([(attached.Server.ServerId, attached.Server.Keys)], attached.Server.ServerId, attached.Server.Keys.Signing);
                // Which PN GW holds which epoch is soft state at the server: one that restarted hears it again.
                foreach (var groupId in Ring.GroupIds)
                    if (Ring.Current(groupId) is { } holding)
                        Acknowledge(groupId, holding.Key.Epoch);
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
                    SendDown(target, WrapFor(held.Key, target, DeliveryMode.Push, held.Announcement), deliver.GroupId,
                        held.Key.Epoch);
                break;
            case ExportLkhPath export:
                ExportPath(export);
                break;
            case HeldPullsDue due:
                ReleaseHeldPulls(due.GroupId, waitOver: true);
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
                ServePneRequest(request, senderId, Sender);
                break;
            case GroupRekeyBroadcast broadcast:
                OnBroadcast(broadcast, senderId);
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

    protected override void Acknowledge(string groupId, long epoch)
    {
        if (_server is not null)
            Link.Send(_server.Cskmf, new GroupKeyAck(groupId, epoch, Identity.DeviceId));
    }

    protected override void OnExpect(ExpectGroupKey release)
    {
        if (_awaitingRelease.TryGetValue(release.GroupId, out var waiting) && waiting.Key.Epoch == release.Epoch)
        {
            _awaitingRelease.Remove(release.GroupId);
            PushIntoPn(waiting);
            return;
        }

        _released[release.GroupId] = release;
        if (_unplaced.TryGetValue(release.GroupId, out var parked) && parked.Key.Epoch == release.Epoch)
        {
            _unplaced.Remove(release.GroupId);
            InstallKey(new InstalledKey(parked.Key, DeliveryMode.Push, release.LocalMembers ?? [], parked.Announcement, Pulled: false));
        }
    }

    protected override void OnInstalled(InstalledKey installed)
    {
        var key = installed.Key;
        ReleaseHeldPulls(key.GroupId, waitOver: false);
        foreach (var stale in _acks.Keys.Where(k => k.GroupId == key.GroupId && k.Epoch < key.Epoch - 1).ToList())
            _acks.Remove(stale);
        if (installed.LocalMembers.Contains(Identity.DeviceId))
            PublishInstalled(key, installed.Pulled, isMember: true);

        if (installed.Pulled)
        {
            FlowTrace.Send(Context, Smf, new GroupKeyAvailable(key.GroupId, key.Epoch), key.GroupId, key.Epoch, 11,
                FlowKind.Pull, FlowLeg.ServerToGateway);
            if (installed.Mode == DeliveryMode.Pull)
                return;
        }

        if (_released.TryGetValue(key.GroupId, out var released) && released.Epoch == key.Epoch)
        {
            _released.Remove(key.GroupId);
            PushIntoPn(installed);
        }
        else
        {
            _awaitingRelease[key.GroupId] = installed;
        }
    }

    /// <summary>
    /// Push step 8 of an LKH group: the broadcast is followed from the tree this PN GW holds to the new one, whose root
    /// opens the epoch's key. One that cannot be followed (this PN GW missed a rekey, or is no leaf) is counted and
    /// pulled instead; nothing held changes.
    /// </summary>
    private void OnBroadcast(GroupRekeyBroadcast broadcast, string senderId)
    {
        var (groupId, epoch) = (broadcast.GroupId, broadcast.Epoch);
        // The LKH tree is the server's; a Group Key Manager may send its broadcasts.
        var problem = !IsWrapper(senderId) || broadcast.WrapperId != _server?.ServerId
            ? $"sent by {senderId}, who may not give keys here"
            : AnnouncementProblem(groupId, epoch, broadcast.KeyCheck, broadcast.Announcement);
        if (problem is not null)
        {
            Link.CountRefusal("RekeyNotVouched");
            Log.Warning("{0}: LKH rekey {1}#{2} dropped: {3}", Identity.DeviceId, groupId, epoch, problem);
            return;
        }

        if (Holds(groupId, epoch))
            return;
        var member = _trees.GetValueOrDefault(groupId) ?? new LkhMember(groupId, Identity.DeviceId);
        GroupKey? key = null;
        var followed = member.Follow(broadcast.BaseTreeEpoch, broadcast.TreeEpoch, broadcast.Steps, root =>
            {
                key = GroupKey.Unwrap(root, broadcast.KeyUnderRoot, groupId, epoch, LkhCrypto.RootRecipient);
                if (key is not null && key.KeyCheck == broadcast.KeyCheck)
                    return true;
                key?.Dispose();
                key = null;
                return false;
            });
        if (!followed || key is null)
        {
            Link.CountRefusal("RekeyNotFollowed");
            Log.Info("{0}: cannot follow the LKH rekey of {1}#{2} (it holds the tree of epoch {3}, the rekey starts from {4}, " +
                     "or its wraps do not open); pulling", Identity.DeviceId, groupId, epoch, member.TreeEpoch, broadcast.BaseTreeEpoch);
            Smf.Tell(new GroupKeyMissing(groupId, epoch), Self);
            return;
        }

        _trees[groupId] = member;
        if (_released.TryGetValue(groupId, out var release) && release.Epoch == epoch)
        {
            InstallKey(new InstalledKey(key, DeliveryMode.Push, release.LocalMembers ?? [], broadcast.Announcement, Pulled: false));
            return;
        }

        if (_unplaced.Remove(groupId, out var superseded))
            superseded.Key.Dispose();
        _unplaced[groupId] = (key, broadcast.Announcement);
    }

    /// <summary>A key wrapped for this PN GW alone came with its LKH path: from now on it follows the broadcasts.</summary>
    protected override void OnPath(GroupKeyDelivery delivery)
    {
        var path = delivery.Path!;
        // Paths are of the server's tree, sealed by the server whoever wrapped the delivery.
        var sealerId = _server?.ServerId ?? delivery.WrapperId;
        var keys = WrapperKeys(sealerId) is { } sealer ? path.Open(Pairwise, sealerId, sealer.Agreement, delivery.GroupId) : null;
        if (keys is null)
        {
            Link.CountRefusal("PathNotOpened");
            Log.Warning("{0}: the LKH path for {1}#{2} does not open; it will pull the next rekey", Identity.DeviceId,
                delivery.GroupId, delivery.Epoch);
            return;
        }

        if (_trees.TryGetValue(delivery.GroupId, out var held) && held.InTree && held.TreeEpoch > path.TreeEpoch)
            return;
        var member = new LkhMember(delivery.GroupId, Identity.DeviceId);
        member.Refresh(path.TreeEpoch, path.Position, path.Size, keys);
        held?.Forget();
        _trees[delivery.GroupId] = member;
    }

    protected override void OnDropped(DropGroupKeys drop)
    {
        if (_trees.Remove(drop.GroupId, out var member))
            member.Forget();
        if (_unplaced.Remove(drop.GroupId, out var parked))
            parked.Key.Dispose();
    }

    private void ExportPath(ExportLkhPath export)
    {
        if (!Settings.Security.AllowKeyExport)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, 0, KeyError.NotAuthorized, "key export is off"));
            return;
        }

        if (!_trees.TryGetValue(export.GroupId, out var member) || !member.InTree)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, 0, KeyError.NotMember, $"{Identity.DeviceId} holds no LKH path of {export.GroupId}"));
            return;
        }

        Sender.Tell(new ExportedLkhPath(export.GroupId, Identity.DeviceId, Identity.DeviceId, Identity.PublicKeys.Agreement,
            LkhPath.Seal(Pairwise, export.RecipientId, export.RecipientAgreementKey, export.GroupId, member.TreeEpoch, member.Position,
                member.Size, member.HeldKeys)));
    }

    /// <summary>Push continues into the PN: step 8 to every PNE member reached through this PN GW.</summary>
    private void PushIntoPn(InstalledKey installed)
    {
        var key = installed.Key;
        foreach (var member in installed.LocalMembers)
        {
            if (member == Identity.DeviceId)
                continue;
            if (!_pnes.TryGetValue(member, out var pne))
            {
                Log.Warning("{0}: member {1} of {2} is not attached here; not pushed", Identity.DeviceId, member, key.GroupId);
                continue;
            }

            SendDown(pne, WrapFor(key, pne, installed.Mode, installed.Announcement), key.GroupId, key.Epoch);
        }
    }

    /// <summary>Push step 8 inside the PN, now or when the PNE is reachable again.</summary>
    private void SendDown(PneAttached pne, ICpnsMessage delivery, string groupId, long epoch) =>
        _downlink.Send(pne.DeviceId, () =>
            FlowTrace.Send(Context, pne.Endpoints.Cskmf, Link.SealFor(pne.Endpoints.Cskmf, delivery), groupId, epoch, 8, FlowKind.Push,
                FlowLeg.GatewayToPne));

    /// <summary>
    /// Pull steps 9 → 10 inside the PN. A pull of an epoch newer than any held here — a PNE that heard of the epoch, or whose
    /// push did not come in time, while this PN GW's own key is still on the way — waits here for it (one per PNE, for at
    /// most <c>cpns.keys.pull-retry-max</c>) and is answered once, instead of being refused and asked again.
    /// </summary>
    private void ServePneRequest(GroupKeyRequest request, string senderId, IActorRef replyTo)
    {
        if (request.RequesterId != senderId)
        {
            Link.Send(replyTo, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.NotAuthorized,
                $"request names {request.RequesterId} but is signed by {senderId}"));
            return;
        }

        var (held, error) = Ring.Get(request.GroupId, request.Epoch, NowMs, Settings.Keys.GraceWindow);
        if (held is null && error is (KeyError.UnknownGroup or KeyError.NotYetAvailable) && _pnes.ContainsKey(senderId))
        {
            if (!_heldPulls.TryGetValue(request.GroupId, out var waiting))
            {
                _heldPulls[request.GroupId] = waiting = new Dictionary<string, (GroupKeyRequest, IActorRef)>(StringComparer.Ordinal);
                Timers.StartSingleTimer(("held-pulls", request.GroupId), new HeldPullsDue(request.GroupId), Settings.Keys.PullRetryMax);
            }

            waiting[senderId] = (request, replyTo);
            return;
        }

        if (held is null)
        {
            Link.Send(replyTo, new GroupKeyRefused(request.GroupId, request.Epoch, error!.Value,
                $"{Identity.DeviceId} cannot give {request.GroupId}#{request.Epoch}"));
            return;
        }

        if (!held.LocalMembers.Contains(senderId) || !_pnes.TryGetValue(senderId, out var pne))
        {
            Log.Info("{0}: refused {1}#{2} to non-member {3}", Identity.DeviceId, request.GroupId, request.Epoch, senderId);
            Link.Send(replyTo, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.NotAuthorized,
                $"{senderId} is not a member of {request.GroupId}#{request.Epoch} here"));
            return;
        }

        FlowTrace.Send(Context, replyTo, Link.SealFor(replyTo, WrapFor(held.Key, pne, DeliveryMode.Pull, held.Announcement)),
            request.GroupId, request.Epoch, 10, FlowKind.Pull, FlowLeg.GatewayToPne);
    }

    private sealed record HeldPullsDue(string GroupId) : INoSerializationVerificationNeeded;

    /// <summary>The pulls held for a group that now has a key here are served; when the wait runs out, told "not yet".</summary>
    private void ReleaseHeldPulls(string groupId, bool waitOver)
    {
        if (!_heldPulls.TryGetValue(groupId, out var waiting))
            return;
        var current = Ring.Current(groupId)?.Key.Epoch ?? 0;
        foreach (var (senderId, (request, replyTo)) in waiting.ToList())
        {
            if (request.Epoch <= current)
            {
                waiting.Remove(senderId);
                ServePneRequest(request, senderId, replyTo);
            }
            else if (waitOver)
            {
                waiting.Remove(senderId);
                Link.Send(replyTo, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.NotYetAvailable,
                    $"{Identity.DeviceId} does not hold {request.GroupId}#{request.Epoch} yet"));
            }
        }

        if (waiting.Count > 0)
            return;
        _heldPulls.Remove(groupId);
        Timers.Cancel(("held-pulls", groupId));
    }

    private GroupKeyDelivery WrapFor(GroupKey key, PneAttached pne, DeliveryMode mode, EpochAnnouncement announcement) =>
        key.DeliveryFor(Pairwise, pne.DeviceId, pne.Keys.Agreement, mode, [pne.DeviceId], announcement);
}
