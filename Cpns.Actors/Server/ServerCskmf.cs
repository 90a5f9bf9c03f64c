using Cpns.Actors.Common;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The distributed topology, as the server's CSKMF sees it: where the Group Key Managers are reached, how a message is
/// addressed to one group's manager there (the deployment knows how: in a cluster, a shard region's envelope), and what
/// checks the managers' credentials (the server's KMC root).
/// </summary>
public sealed record KeyManagerRegion(IActorRef Region, Func<string, object, object> AddressedTo)
{
    public CredentialVerifier? Verifier { get; init; }

    public void Tell(string groupId, object message, IActorRef sender) => Region.Tell(AddressedTo(groupId, message), sender);
}

/// <summary>
/// The CPNS Server's Content/Service Key Management Function. It implements the SEC_CF OSG role through its
/// child <c>osg</c>: creates, updates, delivers (push, or on request: pull) and revokes group keys. Every epoch
/// is persisted, wrapped under the KEK, and signed (an <see cref="EpochAnnouncement"/>) before the SMF hears it
/// is ready; it reaches a PN GW only wrapped for that PN GW, only if its PN is secure enough for the group, and
/// the PN GW acknowledges it. It also notices groups due for a periodic rekey.
/// A push group whose key goes to more PN GWs than <c>cpns.keys.lkh-threshold</c> is keyed through a logical key
/// hierarchy (<see cref="LkhKeyTrees"/>): its rekeys go out as one broadcast, signed once, of O(log n) wraps.
/// It decides and seals here; each group's public-key work (an epoch's key and path wrapped for each PN GW) is done by
/// that group's child, a <see cref="GroupKeyWrapper"/>, so that groups are wrapped side by side (design §9).
/// </summary>
public sealed class ServerCskmf : CpnsPersistentActor, IWithTimers
{
    private sealed record RekeyTick : INoSerializationVerificationNeeded
    {
        public static readonly RekeyTick Instance = new();
    }

    /// <summary>A Group Key Manager has not answered (its node may be failing over): ask again.</summary>
    private sealed record ManagerRetry(string GroupId, long Epoch, bool Revocation) : INoSerializationVerificationNeeded;

    private readonly EntityIdentity _identity;
    private readonly KeyEncryptionKey _kek;
    private readonly PairwiseKeys _pairwise;
    private readonly SecureLink _link;
    private readonly IActorRef _osg;
    private readonly GroupKeyBook _book = new();
    private readonly PullLedger _pulls;
    private readonly LkhKeyTrees _trees;
    private long _flatDeliveries;
    private long _pathsSent;
    private long _repeatedPullsSkipped;
    private long _broadcasts;
    private long _broadcastCopies;
    private long _broadcastBytes;
    private readonly Dictionary<(string GroupId, long Epoch), (RequestGroupKey Request, IActorRef Smf)> _pending = new();
    private readonly Dictionary<string, long> _reservedEpoch = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _pendingRevocations = new(StringComparer.Ordinal);
    private readonly Placements _placements = new();
    private readonly Dictionary<(string GroupId, long Epoch), HashSet<string>> _acks = new();
    private readonly HashSet<string> _rekeyRequested = new(StringComparer.Ordinal);
    private readonly Sibling _smf = new("smf");
    private readonly KeyManagerRegion? _keyManagers;
    private readonly Backpressure _backpressure;
    private readonly Dictionary<string, IActorRef> _wrappers = new(StringComparer.Ordinal);
    private int _wrappersMade;

    /// <param name="keyManagers">
    /// The distributed topology: the shard region (proxy) of the Group Key Managers, which make the keys on gateway
    /// nodes; this CSKMF then keeps the epochs the managers make. Null: the centralized topology, keys from the OSG/KMC here.
    /// </param>
    public ServerCskmf(EntityIdentity identity, KeyEncryptionKey kek, IActorRef kmc, CpnsSettings settings, KeyManagerRegion? keyManagers = null)
        : base(settings)
    {
        _identity = identity;
        _keyManagers = keyManagers;
        _kek = kek;
        _trees = new LkhKeyTrees(kek, settings.Keys.LkhThreshold);
        _pulls = new PullLedger(settings.Keys.PullRetryMax * 4);
        _pairwise = new PairwiseKeys(identity);
        _link = new SecureLink(Context, identity, settings, Log);
        _osg = Context.ActorOf(ServerOsg.Props(kmc), "osg");
        Context.Parent.Tell(SiblingsWanted.Instance, Self);
        _backpressure = new Backpressure(Self, settings.Load.BusyMailboxDepth, "server-cskmf");
    }

    /// <summary>The Group Key Managers met so far, known by their KMC credentials (null: the centralized topology).</summary>
    private KnownKeyManagers? _managers;

    /// <summary>A manager's message names its credential: the key its envelope must verify with, once the credential checks out.</summary>
    private Octets? ManagerKeyIn(object message)
    {
        if (_keyManagers?.Verifier is not { } verifier || message is not IFromKeyManager { ManagerCredential: { } credential })
            return null;
        _managers ??= new KnownKeyManagers(verifier, _identity.DeviceId);
        return _managers.Check(credential, Context.System.Scheduler.Now)?.Keys.Signing;
    }

    private bool IsManager(string senderId) => _managers?.Knows(senderId) == true;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, KeyEncryptionKey kek, IActorRef kmc, CpnsSettings settings,
        KeyManagerRegion? keyManagers = null) =>
        Akka.Actor.Props.Create<ServerCskmf>(identity, kek, kmc, settings, keyManagers);

    public override string PersistenceId => $"cskmf-{Settings.ServerId}";

    protected override object CreateSnapshot() => _book.Snapshot() with { Trees = _trees.Snapshot() };

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override void PreStart()
    {
        base.PreStart();
        if (Settings.Keys.RekeyInterval > TimeSpan.Zero)
        {
            var every = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, Settings.Keys.RekeyInterval.Ticks / 4));
            Timers.StartPeriodicTimer(RekeyTick.Instance, RekeyTick.Instance, every);
        }
    }

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case GroupEpochIssuedEvent issued:
                _book.Apply(issued);
                if (!_trees.Apply(issued.GroupId, issued.Lkh))
                    Log.Warning("the LKH tree of {0} does not follow to epoch {1}; its next epoch builds a new one", issued.GroupId,
                        issued.Epoch);
                break;
            case GroupKeysRevokedEvent revoked:
                _book.Apply(revoked);
                _trees.Drop(revoked.GroupId);
                break;
            case SnapshotOffer { Snapshot: CskmfSnapshot snapshot }:
                _book.Restore(snapshot);
                _trees.Restore(snapshot.Trees ?? []);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case SiblingIs when _smf.TryMeet(message, Sender, Context.Parent):
                break;
            case SignedEnvelope { Manifest: nameof(GroupKeyRequest) } envelope when _backpressure.Backlog() is > 0 and var backlog:
                AnswerBusy(envelope, backlog);
                break;
            case SessionRecord { Manifest: nameof(GroupKeyRequest) } record when _backpressure.Backlog() is > 0 and var backlog:
                // Opening a record costs no public-key work: only the answer is cut short.
                if (_link.TryOpen(record, out var asked, out _) && asked is GroupKeyRequest busyRequest)
                    AnswerBusy(busyRequest, backlog);
                break;
            case ISecureWire wire:
                // Only the distributed topology has senders met by their credential (the Group Key Managers).
                if (!(_keyManagers is null
                        ? _link.TryOpen(wire, out var inner, out var senderId)
                        : _link.TryOpenSelfSigned(wire, ManagerKeyIn, out inner, out senderId)))
                    break;
                if (IsManager(senderId) && !_link.Guard.Knows(senderId))
                    _link.Guard.Trust(senderId, _managers!.KeysOf(senderId).Signing); // from now on in a session too
                OnSigned(inner, senderId);
                break;
            case GatewayPlaced or EntitiesRemoved:
                _placements.ApplyAndTrust(message, _link.Guard, trustPnes: false);
                break;
            case PnesPlaced or PneMoved:
                break; // PNEs reach it through their PN GW's CSKMF, which it needs no placement for
            case RequestGroupKey request:
                OnRequestGroupKey(request);
                break;
            case OsgKeyIssued issued:
                OnKeyIssued(issued);
                break;
            case DeliverGroupKey deliver:
                Push(deliver);
                break;
            case GroupKeyWrapped wrapped:
                SendWrapped(wrapped);
                break;
            case RevokeGroupKey revoke:
                OnRevoke(revoke);
                break;
            case OsgKeyRevoked revoked:
                OnRevoked(revoked);
                break;
            case RekeyTick:
                RequestDueRekeys();
                break;
            case ManagerRetry retry:
                RetryManager(retry);
                break;
            case GetKeyState query:
                Sender.Tell(KeyState(query.GroupId));
                break;
            case GetKeyAcks query:
                Sender.Tell(Acks(query.GroupId));
                break;
            case GetLkhState query:
                Sender.Tell(_trees.State(query.GroupId) with { CurrentRekey = BroadcastOf(_book.Current(query.GroupId)) });
                break;
            case GetKeyDeliveryStats:
                Sender.Tell(new KeyDeliveryStats(_trees.Count, _flatDeliveries, _pathsSent, _broadcasts, _broadcastCopies,
                    _broadcastBytes, _repeatedPullsSkipped));
                break;
            case ExportLkhPath export:
                ExportPath(export);
                break;
            case ExportGroupKey export:
                Export(export);
                break;
            case SealForGroup seal:
                Sender.Tell(SealContent(seal));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case GroupKeyRequest request:
                OnPullRequest(request, senderId);
                break;
            case GkmKeyIssued issued when IsManager(senderId) && !_pending.ContainsKey((issued.GroupId, issued.Epoch)):
                Log.Debug("group key manager of {0} answered epoch {1} again (a retry); already registered", issued.GroupId, issued.Epoch);
                break;
            case GkmKeyIssued issued when IsManager(senderId):
                OnManagerIssued(issued, senderId);
                break;
            case GkmKeyRefused refused when IsManager(senderId):
                OnManagerRefused(refused);
                break;
            case GkmPushDeclined declined when IsManager(senderId):
                Log.Info("the group key manager {0} cannot push {1}#{2} ({3}); delivering it from here", senderId, declined.GroupId,
                    declined.Epoch, declined.Reason);
                PushFromHere(declined.GroupId, declined.Epoch);
                break;
            case GkmRevoked revoked when IsManager(senderId):
                Timers.Cancel(("gkm-revoke", revoked.GroupId));
                OnRevoked(new OsgKeyRevoked(revoked.GroupId, revoked.FinalEpoch));
                break;
            case GroupKeyAck ack when ack.HolderId == senderId:
                var acknowledged = _book.Current(ack.GroupId);
                if (_acks.TryGetValue((ack.GroupId, ack.Epoch), out var acked))
                {
                    if (acked.Add(senderId) && acknowledged?.Epoch == ack.Epoch)
                        CpnsMetrics.KeyDeliveryLatency.Record(Math.Max(0, NowMs - acknowledged.IssuedAtMs),
                            CpnsMetrics.Tag("mode", acknowledged.Mode == DeliveryMode.Push ? "push" : "pull"));
                }
                else if (acknowledged?.Epoch == ack.Epoch)
                {
                    // An epoch recovered from the journal: who holds it is soft state, told again by its holders (not a
                    // delivery this incarnation timed).
                    _acks[(ack.GroupId, ack.Epoch)] = new HashSet<string>(StringComparer.Ordinal) { senderId };
                }

                break;
            default:
                Log.Warning("cskmf: unexpected signed {0} from {1}", message.GetType().Name, senderId);
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
        if (_keyManagers is not null)
        {
            AskManager(request.GroupId, epoch, request.Mode);
            return;
        }

        FlowTrace.Send(Context, _osg, new OsgKeyRequest(request.GroupId, epoch, KeyParameters.Aes256Gcm(request.Mode)),
            request.GroupId, epoch, 2, request.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
    }

    // ---- The distributed topology: keys from the group's Group Key Manager on a gateway node ----

    private void ToManager(string groupId, ICpnsMessage message) =>
        _keyManagers!.Tell(groupId, _link.Seal(message), Self);

    private void AskManager(string groupId, long epoch, DeliveryMode mode)
    {
        Context.System.EventStream.Publish(new FlowStep(groupId, epoch, 2, FlowTrace.Label(Self), $"group-key-manager/{groupId}",
            mode.ToFlowKind(), FlowLeg.ServerToGateway));
        ToManager(groupId, new GkmCreateKey(groupId, epoch, KeyParameters.Aes256Gcm(mode)));
        Timers.StartSingleTimer(("gkm", groupId, epoch), new ManagerRetry(groupId, epoch, false), Settings.Cluster.KeyManagerRetry);
    }

    private void RetryManager(ManagerRetry retry)
    {
        if (retry.Revocation)
        {
            if (!_pendingRevocations.ContainsKey(retry.GroupId))
                return;
            Log.Info("the group key manager of {0} has not confirmed the revocation; asking again", retry.GroupId);
            ToManager(retry.GroupId, new GkmRevoke(retry.GroupId, retry.Epoch));
            Timers.StartSingleTimer(("gkm-revoke", retry.GroupId), retry, Settings.Cluster.KeyManagerRetry);
            return;
        }

        if (!_pending.TryGetValue((retry.GroupId, retry.Epoch), out var pending))
            return;
        Log.Info("the group key manager of {0} has not issued epoch {1} yet; asking again", retry.GroupId, retry.Epoch);
        AskManager(retry.GroupId, retry.Epoch, pending.Request.Mode);
    }

    /// <summary>
    /// The manager is past this epoch (this registry lost a reservation): the request moves on to the manager's next
    /// epoch, so an epoch number is never used twice.
    /// </summary>
    private void OnManagerRefused(GkmKeyRefused refused)
    {
        Timers.Cancel(("gkm", refused.GroupId, refused.Epoch));
        if (!_pending.Remove((refused.GroupId, refused.Epoch), out var pending))
            return;
        if (refused.Reason == GkmRefusal.Revoked)
        {
            Log.Warning("the group key manager of {0} refused epoch {1}: the group's keys are revoked", refused.GroupId, refused.Epoch);
            return;
        }

        var next = Math.Max(refused.LastEpoch, _reservedEpoch.GetValueOrDefault(refused.GroupId)) + 1;
        Log.Warning("the group key manager of {0} is at epoch {1}; epoch {2} becomes {3}", refused.GroupId, refused.LastEpoch,
            refused.Epoch, next);
        _reservedEpoch[refused.GroupId] = next;
        _pending[(refused.GroupId, next)] = pending;
        AskManager(refused.GroupId, next, pending.Request.Mode);
    }

    /// <summary>A Group Key Manager's key, wrapped for this server alone: kept here under this server's KEK, as the OSG's are.</summary>
    private void OnManagerIssued(GkmKeyIssued issued, string managerId)
    {
        using var key = GroupKey.UnwrapFrom(_pairwise, managerId, _managers!.KeysOf(managerId).Agreement, issued.KeyForServer,
            issued.GroupId, issued.Epoch);
        if (key is null || key.KeyCheck != issued.KeyCheck)
        {
            Log.Warning("group key manager of {0}: epoch {1} does not open for {2}; waiting for it again", issued.GroupId, issued.Epoch,
                _identity.DeviceId);
            return;
        }

        Timers.Cancel(("gkm", issued.GroupId, issued.Epoch));
        Log.Debug("group key manager of {0} on {1} issued epoch {2}", issued.GroupId, issued.ManagerNode, issued.Epoch);
        OnKeyIssued(new OsgKeyIssued(issued.GroupId, issued.Epoch, issued.Parameters, _kek.Wrap(key), issued.KeyCheck));
    }

    private void OnKeyIssued(OsgKeyIssued issued)
    {
        if (!_pending.Remove((issued.GroupId, issued.Epoch), out var pending))
        {
            Log.Warning("OSG issued {0}#{1} that nobody asked for; discarded", issued.GroupId, issued.Epoch);
            return;
        }

        var request = pending.Request;
        var announcement = EpochAnnouncement.Sign(_identity, issued.GroupId, issued.Epoch, issued.KeyCheck);
        var @event = new GroupEpochIssuedEvent(issued.GroupId, issued.Epoch, request.Mode, request.RequiredSecurityLevel,
            issued.KeyUnderKek, issued.KeyCheck, announcement, request.Targets, NowMs, PlanTree(issued, request));
        Persist(@event, e =>
        {
            _book.Apply(e);
            CpnsMetrics.Rekeys.Add(1, CpnsMetrics.Tag("mode", e.Mode == DeliveryMode.Push ? "push" : "pull"));
            _rekeyRequested.Remove(e.GroupId);
            _acks[(e.GroupId, e.Epoch)] = new HashSet<string>(StringComparer.Ordinal);
            foreach (var stale in _acks.Keys.Where(k => k.GroupId == e.GroupId && k.Epoch < e.Epoch - 1).ToList())
                _acks.Remove(stale);
            FlowTrace.Send(Context, pending.Smf, new GroupKeyReady(e.GroupId, e.Epoch, e.Mode, e.KeyCheck), e.GroupId,
                e.Epoch, 6, e.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
            SnapshotIfDue();
        });
    }

    /// <summary>
    /// A push group's tree for the new epoch (null: keyed per PN GW). Its leaves are the target PN GWs whose PN is
    /// secure enough for the group: the broadcast opens for every leaf.
    /// </summary>
    private LkhEpochRecord? PlanTree(OsgKeyIssued issued, RequestGroupKey request)
    {
        if (request.Mode != DeliveryMode.Push)
            return null;
        var recipients = request.Targets.Where(t => LevelProblem(t.GatewayId, request.RequiredSecurityLevel) is null).ToList();
        using var key = _kek.Unwrap(issued.GroupId, issued.Epoch, issued.KeyUnderKek);
        var record = _trees.Advance(issued.GroupId, issued.Epoch, key, recipients);
        if (record is not null && Log.IsDebugEnabled)
            Log.Debug("LKH {0}#{1}: {2} PN GWs, {3}", issued.GroupId, issued.Epoch, recipients.Count,
                record.Rebuilt ? "tree built" : $"{record.Left.Count} left, {record.Joined.Count} joined, {record.Steps.Sum(st => st.WrapCount)} wraps");
        return record;
    }

    /// <summary>Content from a local sender (an ACE, the operator), encrypted once under the group's current epoch.</summary>
    private object SealContent(SealForGroup seal)
    {
        if (_book.Current(seal.GroupId) is not { } current)
            return new ContentRefused(seal.GroupId, 0, KeyError.UnknownGroup, $"{seal.GroupId} has no live epoch");
        using var key = _kek.Unwrap(current.GroupId, current.Epoch, current.KeyUnderKek);
        return GroupCipher.Encrypt(key, seal.SenderId, seal.Plaintext.Span);
    }

    /// <summary>Push step 8: after the SMF has sent its step-7 notices, the key goes to every target PN GW.</summary>
    /// <param name="fromHere">Delivered by this CSKMF even in the distributed topology (the group's manager declined).</param>
    private void Push(DeliverGroupKey deliver, bool fromHere = false)
    {
        var current = _book.Current(deliver.GroupId);
        if (current is null || current.Epoch != deliver.Epoch)
        {
            Log.Debug("push of {0}#{1} skipped: current epoch is {2}", deliver.GroupId, deliver.Epoch,
                current?.Epoch.ToString() ?? "none");
            return;
        }

        var targets = new List<KeyDeliveryTarget>();
        foreach (var target in current.Targets.Where(t => deliver.OnlyGatewayId is null || t.GatewayId == deliver.OnlyGatewayId))
        {
            if (LevelProblem(target.GatewayId, current.RequiredSecurityLevel) is { } problem)
                Log.Warning("push of {0}#{1} to {2} withheld: {3}", current.GroupId, current.Epoch, target.GatewayId, problem);
            else
                targets.Add(target);
        }

        // A tree that changed by joins and leaves reaches the leaves it kept in one broadcast; a tree just built, a PN GW
        // that joined it, one catching up, or one outside the tree gets the key wrapped for it alone (with its path, if
        // it is a leaf).
        var broadcast = deliver.OnlyGatewayId is null ? BroadcastOf(current) : null;
        var joined = current.Lkh?.Joined.Select(j => j.MemberId).ToHashSet(StringComparer.Ordinal) ?? [];
        var broadcastTo = new List<KeyDeliveryTarget>();
        var individually = new List<KeyDeliveryTarget>();
        foreach (var target in targets)
            (broadcast is not null && _trees.Contains(current.GroupId, target.GatewayId) && !joined.Contains(target.GatewayId)
                ? broadcastTo
                : individually).Add(target);

        if (_keyManagers is not null && !fromHere)
        {
            // Direct delivery by the group's Group Key Manager; the paths come from the tree kept here.
            var paths = individually.Select(t => (t.GatewayId, Path: PathFor(current, t))).Where(p => p.Path is not null)
                .ToDictionary(p => p.GatewayId, p => p.Path!, StringComparer.Ordinal);
            _flatDeliveries += individually.Count;
            _pathsSent += paths.Count;
            if (broadcast is not null)
                CountBroadcast(broadcastTo.Count, Serialization.ProtocolSerializer.Encode(broadcast).Length);
            ToManager(current.GroupId, new GkmPush(current.GroupId, current.Epoch, current.Mode, current.Announcement, individually,
                paths, broadcast, broadcastTo));
            return;
        }

        // Wrapped by the group's child and sent from here when it is done, in the order asked (the broadcast with them).
        if (individually.Count > 0 || broadcastTo.Count > 0)
            WrapperOf(current.GroupId).Tell(new WrapGroupKey(current,
                individually.Select(target => Order(current, target, target.GatewayCskmf, 8, FlowKind.Push)).ToList(),
                broadcastTo.Count > 0 ? broadcast : null, broadcastTo));
    }

    private void PushFromHere(string groupId, long epoch) => Push(new DeliverGroupKey(groupId, epoch), fromHere: true);

    /// <summary>
    /// The child that does a group's public-key work, made when the group first needs it (design §9); on the server's
    /// dispatcher, as its parent, or it would get a PNE's share of turns in a simulation.
    /// </summary>
    private IActorRef WrapperOf(string groupId)
    {
        if (!_wrappers.TryGetValue(groupId, out var wrapper))
            _wrappers[groupId] = wrapper = Context.ActorOf(GroupKeyWrapper.Props(_kek, _pairwise).WithDispatcher(ServerEntity.Dispatcher),
                $"wrapper-{++_wrappersMade}");
        return wrapper;
    }

    /// <summary>A PN GW's copy of an epoch, to be wrapped by the group's wrapper; with its path when it is a leaf of the current tree.</summary>
    private KeyWrapOrder Order(GroupEpochIssuedEvent issued, KeyDeliveryTarget target, IActorRef to, int step, FlowKind kind)
    {
        var path = PathKeysFor(issued, target);
        _flatDeliveries++;
        if (path is not null)
            _pathsSent++;
        return new KeyWrapOrder(target, to, path, step, kind);
    }

    /// <summary>Push step 8 or pull step 10 once wrapped: each copy goes out in its session with the PN GW (the broadcast signed once).</summary>
    private void SendWrapped(GroupKeyWrapped wrapped)
    {
        var (issued, orders, broadcast, broadcastTo) = wrapped.Job;
        if (broadcast is not null && broadcastTo is { Count: > 0 })
        {
            var sealedBroadcast = _link.Seal(broadcast);
            CountBroadcast(broadcastTo.Count, sealedBroadcast.Payload.Length);
            foreach (var target in broadcastTo)
                FlowTrace.Send(Context, target.GatewayCskmf, sealedBroadcast, issued.GroupId, issued.Epoch, 8, FlowKind.Push,
                    FlowLeg.ServerToGateway);
        }

        for (var i = 0; i < orders.Count; i++)
            FlowTrace.Send(Context, orders[i].To, _link.SealFor(orders[i].To, wrapped.Deliveries[i]), issued.GroupId, issued.Epoch,
                orders[i].Step, orders[i].Kind, FlowLeg.ServerToGateway);
    }

    /// <summary>The rekey broadcast of an epoch that changed its group's tree by joins and leaves.</summary>
    private GroupRekeyBroadcast? BroadcastOf(GroupEpochIssuedEvent? issued) =>
        issued?.Lkh is { Rebuilt: false } lkh && _trees.Has(issued.GroupId)
            ? new GroupRekeyBroadcast(issued.GroupId, issued.Epoch, _identity.DeviceId, lkh.BaseTreeEpoch, lkh.TreeEpoch, lkh.Steps,
                lkh.KeyUnderRoot, issued.KeyCheck, issued.Announcement)
            : null;

    private void CountBroadcast(int copies, int bytes)
    {
        _broadcasts++;
        _broadcastCopies += copies;
        _broadcastBytes += bytes;
    }

    /// <summary>
    /// Overloaded: a key request is answered at once, "busy, retry after", without its public-key work (checking the
    /// signature, unwrapping, wrapping). The answer is signed as any: the requester trusts it as much as a key.
    /// </summary>
    private void AnswerBusy(SignedEnvelope envelope, long backlog)
    {
        GroupKeyRequest? request;
        try
        {
            request = Context.System.Serialization.Deserialize(envelope.Payload.ToArray(), Serialization.ProtocolSerializer.SerializerId,
                envelope.Manifest) as GroupKeyRequest;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            request = null;
        }

        if (request is null || !_link.Guard.Knows(envelope.SenderId))
        {
            // Malformed, or from nobody we serve: the guard refuses and counts it as at any other time (cheaply: both are
            // refused before any signature is checked).
            _link.TryOpen(envelope, out _, out _);
            return;
        }

        AnswerBusy(request, backlog);
    }

    private void AnswerBusy(GroupKeyRequest request, long backlog)
    {
        var busy = _backpressure.TurnAway(backlog);
        _link.Send(Sender, new GroupKeyRefused(request.GroupId, request.Epoch, KeyError.Busy, busy.Detail, busy.RetryAfterMs));
    }

    /// <summary>Pull steps 9 → 10: a PN GW asks for an epoch; it gets it wrapped for itself alone, if it may.</summary>
    private void OnPullRequest(GroupKeyRequest request, string senderId)
    {
        if (request.RequesterId != senderId)
        {
            Refuse(request, KeyError.NotAuthorized, $"request names {request.RequesterId} but is signed by {senderId}");
            return;
        }

        var lookup = _book.Lookup(request.GroupId, request.Epoch, NowMs, Settings.Keys.GraceWindow);
        if (lookup.Epoch is not { } issued)
        {
            var error = lookup.Error!.Value;
            if (error == KeyError.UnknownEpoch && _pending.ContainsKey((request.GroupId, request.Epoch)))
                error = KeyError.NotYetAvailable;
            Refuse(request, error, lookup.Detail!);
            return;
        }

        if (LevelProblem(senderId, issued.RequiredSecurityLevel) is { } problem)
        {
            Refuse(request, KeyError.InsufficientSecurityLevel, problem);
            return;
        }

        var target = issued.Targets.FirstOrDefault(t => t.GatewayId == senderId);
        if (target is null)
        {
            Refuse(request, KeyError.NotAuthorized, $"{senderId} serves no member of {request.GroupId}#{request.Epoch}");
            return;
        }

        if (_pulls.IsCoveredRepeat(request.GroupId, request.Epoch, senderId, request.SentAtMs))
        {
            _repeatedPullsSkipped++;
            CpnsMetrics.KeyPulls.Add(1, CpnsMetrics.Tag("outcome", "repeat"));
            Log.Debug("pull of {0}#{1} by {2} was sent before the answer to it; not answered again", request.GroupId, request.Epoch,
                senderId);
            return;
        }

        _pulls.Answered(request.GroupId, request.Epoch, senderId, NowMs);
        CpnsMetrics.KeyPulls.Add(1, CpnsMetrics.Tag("outcome", "delivered"));
        WrapperOf(issued.GroupId).Tell(new WrapGroupKey(issued, [Order(issued, target, Sender, 10, FlowKind.Pull)]));
    }

    /// <summary>A key enters a PN only if the PN GW reports that PN at least as secure as the group requires.</summary>
    private string? LevelProblem(string gatewayId, SecurityLevel required)
    {
        var level = _placements.LevelOf(gatewayId);
        return level < required ? $"the PN of {gatewayId} offers {level} security; the group requires {required}" : null;
    }

    /// <summary>The tree stands as of the current epoch: a path goes only with the current epoch's key.</summary>
    private LkhPathKeys? PathKeysFor(GroupEpochIssuedEvent issued, KeyDeliveryTarget target) =>
        issued.Lkh is not null && _book.Current(issued.GroupId)?.Epoch == issued.Epoch
            ? _trees.PathKeysFor(issued.GroupId, target.GatewayId)
            : null;

    private LkhPath? PathFor(GroupEpochIssuedEvent issued, KeyDeliveryTarget target)
    {
        using var keys = PathKeysFor(issued, target);
        return keys?.SealFor(_pairwise, target.GatewayId, target.GatewayAgreementKey);
    }

    private void Refuse(GroupKeyRequest request, KeyError error, string detail)
    {
        Log.Info("key request {0}#{1} from {2} refused: {3} ({4})", request.GroupId, request.Epoch, request.RequesterId,
            error, detail);
        CpnsMetrics.KeyPulls.Add(1, CpnsMetrics.Tag("outcome", error.ToString()));
        _link.Send(Sender, new GroupKeyRefused(request.GroupId, request.Epoch, error, detail));
    }

    private void OnRevoke(RevokeGroupKey revoke)
    {
        var finalEpoch = Math.Max(_book.LastEpoch(revoke.GroupId), _reservedEpoch.GetValueOrDefault(revoke.GroupId));
        _pendingRevocations[revoke.GroupId] = Sender;
        if (_keyManagers is not null)
        {
            ToManager(revoke.GroupId, new GkmRevoke(revoke.GroupId, finalEpoch));
            Timers.StartSingleTimer(("gkm-revoke", revoke.GroupId), new ManagerRetry(revoke.GroupId, finalEpoch, true),
                Settings.Cluster.KeyManagerRetry);
            return;
        }

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
            _trees.Drop(e.GroupId);
            if (_wrappers.Remove(e.GroupId, out var wrapper))
                Context.Stop(wrapper);
            foreach (var stale in _acks.Keys.Where(k => k.GroupId == e.GroupId).ToList())
                _acks.Remove(stale);
            FlowTrace.Send(Context, smf, new GroupKeyRevoked(e.GroupId, e.FinalEpoch), e.GroupId, e.FinalEpoch, 4,
                FlowKind.Revoke, FlowLeg.ServerToGateway);
            SnapshotIfDue();
        });
    }

    /// <summary>Groups whose current epoch is older than the rekey interval get a new one (through the SMF).</summary>
    private void RequestDueRekeys()
    {
        var now = NowMs;
        foreach (var groupId in _book.GroupIds.ToList())
        {
            if (_book.Current(groupId) is not { } current || _rekeyRequested.Contains(groupId) ||
                now - current.IssuedAtMs < Settings.Keys.RekeyInterval.TotalMilliseconds)
                continue;
            _rekeyRequested.Add(groupId);
            _smf.Tell(new RekeyDue(groupId), Self);
        }
    }

    private HeldGroupKey KeyState(string groupId)
    {
        var live = _book.LiveEpochs(groupId);
        var current = _book.Current(groupId);
        return new HeldGroupKey(groupId, _identity.DeviceId, current?.Epoch, current?.KeyCheck,
            live.Select(e => e.Epoch).ToList(), _book.IsRevoked(groupId));
    }

    private KeyAcks Acks(string groupId)
    {
        var current = _book.Current(groupId);
        if (current is null)
            return new KeyAcks(groupId, 0, [], []);
        var acked = _acks.GetValueOrDefault((groupId, current.Epoch)) ?? [];
        return new KeyAcks(groupId, current.Epoch, acked.Order(StringComparer.Ordinal).ToList(),
            current.Targets.Select(t => t.GatewayId).Where(g => !acked.Contains(g)).Order(StringComparer.Ordinal).ToList());
    }

    private void ExportPath(ExportLkhPath export)
    {
        if (!Settings.Security.AllowKeyExport)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, 0, KeyError.NotAuthorized, "key export is off"));
            return;
        }

        var path = _trees.PathFor(export.GroupId, export.MemberId, _pairwise, export.RecipientId, export.RecipientAgreementKey);
        Sender.Tell(path is null
            ? new GroupKeyRefused(export.GroupId, 0, KeyError.NotMember, $"{export.MemberId} is no leaf of an LKH tree of {export.GroupId}")
            : new ExportedLkhPath(export.GroupId, export.MemberId, _identity.DeviceId, _identity.PublicKeys.Agreement, path));
    }

    private void Export(ExportGroupKey export)
    {
        if (!Settings.Security.AllowKeyExport)
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

        using var key = _kek.Unwrap(issued.GroupId, issued.Epoch, issued.KeyUnderKek);
        Sender.Tell(new ExportedGroupKey(issued.GroupId, issued.Epoch, _identity.DeviceId,
            _identity.PublicKeys.Agreement, key.WrapFor(_pairwise, export.RecipientId, export.RecipientAgreementKey)));
    }
}
