using Akka.Event;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server's Content/Service Key Management Function. It implements the SEC_CF OSG role through its
/// child <c>osg</c>: creates, updates, delivers (push, or on request: pull) and revokes group keys. Every
/// epoch is persisted, wrapped under the KEK, before the SMF hears it is ready.
/// </summary>
public sealed class ServerCskmf : CpnsPersistentActor
{
    private readonly EntityIdentity _identity;
    private readonly KeyEncryptionKey _kek;
    private readonly PairwiseKeys _pairwise;
    private readonly IActorRef _osg;
    private readonly GroupKeyBook _book = new();
    private readonly Dictionary<(string GroupId, long Epoch), (RequestGroupKey Request, IActorRef Smf)> _pending = new();
    private readonly Dictionary<string, long> _reservedEpoch = new();
    private readonly Dictionary<string, IActorRef> _pendingRevocations = new();

    public ServerCskmf(EntityIdentity identity, KeyEncryptionKey kek, IActorRef kmc, CpnsSettings settings) : base(settings)
    {
        _identity = identity;
        _kek = kek;
        _pairwise = new PairwiseKeys(identity);
        _osg = Context.ActorOf(Osg.Props(kmc), "osg");
    }

    public static Props Props(EntityIdentity identity, KeyEncryptionKey kek, IActorRef kmc, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new ServerCskmf(identity, kek, kmc, settings));

    public override string PersistenceId => $"cskmf-{Settings.ServerId}";

    protected override object CreateSnapshot() => _book.Snapshot();

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case GroupEpochIssuedEvent issued:
                _book.Apply(issued);
                break;
            case GroupKeysRevokedEvent revoked:
                _book.Apply(revoked);
                break;
            case SnapshotOffer { Snapshot: CskmfSnapshot snapshot }:
                _book.Restore(snapshot);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case RequestGroupKey request:
                OnRequestGroupKey(request);
                break;
            case OsgKeyIssued issued:
                OnKeyIssued(issued);
                break;
            case DeliverGroupKey deliver:
                Push(deliver);
                break;
            case GroupKeyRequest request:
                OnPullRequest(request);
                break;
            case RevokeGroupKey revoke:
                OnRevoke(revoke);
                break;
            case OsgKeyRevoked revoked:
                OnRevoked(revoked);
                break;
            case GetKeyState query:
                Sender.Tell(KeyState(query.GroupId));
                break;
            case ExportGroupKey export:
                Export(export);
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnRequestGroupKey(RequestGroupKey request)
    {
        // Step 1 arrived; reserve the next epoch (never reused, also across revocation and recovery).
        var last = Math.Max(_book.LastEpoch(request.GroupId), _reservedEpoch.GetValueOrDefault(request.GroupId));
        var epoch = last + 1;
        _reservedEpoch[request.GroupId] = epoch;
        _pending[(request.GroupId, epoch)] = (request, Sender);
        FlowTrace.Send(Context, _osg, new OsgKeyRequest(request.GroupId, epoch, KeyParameters.Aes256Gcm(request.Mode)),
            request.GroupId, epoch, 2, request.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
    }

    private void OnKeyIssued(OsgKeyIssued issued)
    {
        if (!_pending.Remove((issued.GroupId, issued.Epoch), out var pending))
        {
            Log.Warning("OSG issued {0}#{1} that nobody asked for; discarded", issued.GroupId, issued.Epoch);
            return;
        }

        var request = pending.Request;
        var @event = new GroupEpochIssuedEvent(issued.GroupId, issued.Epoch, request.Mode, issued.KeyUnderKek,
            issued.KeyCheck, request.Targets, NowMs);
        Persist(@event, e =>
        {
            _book.Apply(e);
            FlowTrace.Send(Context, pending.Smf, new GroupKeyReady(e.GroupId, e.Epoch, e.Mode, e.KeyCheck), e.GroupId,
                e.Epoch, 6, e.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
            SnapshotIfDue();
        });
    }

    /// <summary>Push step 8: after the SMF has sent its step-7 notices, the key goes to every target PN GW.</summary>
    private void Push(DeliverGroupKey deliver)
    {
        var current = _book.Current(deliver.GroupId);
        if (current is null || current.Epoch != deliver.Epoch)
        {
            Log.Info("push of {0}#{1} skipped: current epoch is {2}", deliver.GroupId, deliver.Epoch,
                current?.Epoch.ToString() ?? "none");
            return;
        }

        var key = _kek.Unwrap(current.GroupId, current.Epoch, current.KeyUnderKek);
        try
        {
            foreach (var target in current.Targets)
                FlowTrace.Send(Context, target.GatewayCskmf, WrapFor(key, current, target), current.GroupId,
                    current.Epoch, 8, FlowKind.Push, FlowLeg.ServerToGateway);
        }
        finally
        {
            key.Destroy();
        }
    }

    /// <summary>Pull steps 9 → 10: a PN GW's CSKMF asks for an epoch; it gets it wrapped for itself alone.</summary>
    private void OnPullRequest(GroupKeyRequest request)
    {
        var lookup = _book.Lookup(request.GroupId, request.Epoch, NowMs, Settings.KeyGraceWindow);
        if (lookup.Epoch is not { } issued)
        {
            var error = lookup.Error!.Value;
            if (error == KeyError.UnknownEpoch && _pending.ContainsKey((request.GroupId, request.Epoch)))
                error = KeyError.NotYetAvailable;
            Refuse(request, error, lookup.Detail!);
            return;
        }

        var target = issued.Targets.FirstOrDefault(t => t.GatewayId == request.RequesterId);
        if (target is null)
        {
            Refuse(request, KeyError.NotMember, $"{request.RequesterId} serves no member of {request.GroupId}#{request.Epoch}");
            return;
        }

        var key = _kek.Unwrap(issued.GroupId, issued.Epoch, issued.KeyUnderKek);
        try
        {
            FlowTrace.Send(Context, Sender, WrapFor(key, issued, target),
                issued.GroupId, issued.Epoch, 10, FlowKind.Pull, FlowLeg.ServerToGateway);
        }
        finally
        {
            key.Destroy();
        }
    }

    private GroupKeyDelivery WrapFor(GroupKey key, GroupEpochIssuedEvent issued, KeyDeliveryTarget target)
    {
        var pairwise = _pairwise.KeyFor(target.GatewayId, target.GatewayAgreementKey);
        return new GroupKeyDelivery(issued.GroupId, issued.Epoch, issued.Mode, _identity.DeviceId, target.GatewayId,
            key.WrapUnder(pairwise, target.GatewayId), issued.KeyCheck, target.LocalMembers);
    }

    private void Refuse(GroupKeyRequest request, KeyError error, string detail)
    {
        Log.Info("key request {0}#{1} from {2} refused: {3} ({4})", request.GroupId, request.Epoch, request.RequesterId,
            error, detail);
        Sender.Tell(new GroupKeyRefused(request.GroupId, request.Epoch, error, detail));
    }

    private void OnRevoke(RevokeGroupKey revoke)
    {
        var finalEpoch = Math.Max(_book.LastEpoch(revoke.GroupId), _reservedEpoch.GetValueOrDefault(revoke.GroupId));
        _pendingRevocations[revoke.GroupId] = Sender;
        FlowTrace.Send(Context, _osg, new OsgRevokeKey(revoke.GroupId, finalEpoch), revoke.GroupId, finalEpoch, 2,
            FlowKind.Revoke, FlowLeg.ServerToGateway);
    }

    private void OnRevoked(OsgKeyRevoked revoked)
    {
        if (!_pendingRevocations.Remove(revoked.GroupId, out var smf))
            return;
        Persist(new GroupKeysRevokedEvent(revoked.GroupId, revoked.FinalEpoch), e =>
        {
            _book.Apply(e);
            FlowTrace.Send(Context, smf, new GroupKeyRevoked(e.GroupId, e.FinalEpoch), e.GroupId, e.FinalEpoch, 4,
                FlowKind.Revoke, FlowLeg.ServerToGateway);
            SnapshotIfDue();
        });
    }

    private HeldGroupKey KeyState(string groupId)
    {
        var live = _book.LiveEpochs(groupId);
        var current = _book.Current(groupId);
        return new HeldGroupKey(groupId, _identity.DeviceId, current?.Epoch, current?.KeyCheck,
            live.Select(e => e.Epoch).ToList(), _book.IsRevoked(groupId));
    }

    private void Export(ExportGroupKey export)
    {
        if (!Settings.AllowKeyExport)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, KeyError.NotAuthorized, "key export is off"));
            return;
        }

        var issued = _book.LiveEpochs(export.GroupId).FirstOrDefault(e => e.Epoch == export.Epoch);
        if (issued is null)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, KeyError.UnknownEpoch, "epoch not held"));
            return;
        }

        var key = _kek.Unwrap(issued.GroupId, issued.Epoch, issued.KeyUnderKek);
        try
        {
            var pairwise = _pairwise.KeyFor(export.RecipientId, export.RecipientAgreementKey);
            Sender.Tell(new ExportedGroupKey(issued.GroupId, issued.Epoch, _identity.DeviceId,
                _identity.PublicKeys.Agreement, key.WrapUnder(pairwise, export.RecipientId)));
        }
        finally
        {
            key.Destroy();
        }
    }
}
