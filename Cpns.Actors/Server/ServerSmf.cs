using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server's Service Management Function: service groups, their members and access control lists.
/// A change is authorized first (privileges View &lt; Operate &lt; Manage &lt; Administer; the PN security level a
/// group requires), then asks the CSKMF for a new key epoch (step 1), is persisted when the key is ready (step 6),
/// acknowledged, and announced to the PN GWs that reach members (step 7). Changes to one group are applied one
/// at a time. Requests come signed from registered entities, or unsigned from a local operator.
/// </summary>
public sealed class ServerSmf : CpnsPersistentActor
{
    private sealed class Group(string id, string owner, DeliveryMode mode, SecurityLevel requiredLevel, JoinPolicy joinPolicy)
    {
        public string Id { get; } = id;
        public string Owner { get; } = owner;
        public DeliveryMode Mode { get; } = mode;
        public SecurityLevel RequiredLevel { get; } = requiredLevel;
        public JoinPolicy JoinPolicy { get; } = joinPolicy;
        public long Epoch { get; set; }
        public long LastRekeyMs { get; set; }
        public SortedSet<string> Members { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Privilege> Acl { get; } = new(StringComparer.Ordinal);

        public Privilege PrivilegeOf(string subject) => Acl.GetValueOrDefault(subject, Privilege.None);

        /// <summary>
        /// What the requester of <paramref name="request"/> may do here: the node's operator (through the node-local API
        /// only — an entity that calls itself "operator" gets nothing from the name) administers every group.
        /// </summary>
        public Privilege PrivilegeOf(Request request, string requesterId) =>
            request.ByOperator(requesterId) ? Privilege.Administer : PrivilegeOf(requesterId);

        public GroupSnapshotEntry ToEntry() => new(Id, Owner, Mode, Epoch, Members.ToList(), RequiredLevel, JoinPolicy,
            Acl.Select(kv => new AclEntry(kv.Key, kv.Value)).OrderBy(e => e.SubjectId, StringComparer.Ordinal).ToList(),
            LastRekeyMs);

        public static Group From(GroupSnapshotEntry entry)
        {
            var group = new Group(entry.GroupId, entry.Owner, entry.Mode, entry.RequiredSecurityLevel, entry.JoinPolicy)
            {
                Epoch = entry.Epoch,
                LastRekeyMs = entry.LastRekeyMs,
            };
            group.Members.UnionWith(entry.Members);
            foreach (var acl in entry.Acl)
                group.Acl[acl.SubjectId] = acl.Privilege;
            return group;
        }
    }

    /// <summary>A request, who to answer, and whether the answer is sealed (the request was).</summary>
    private sealed record Request(object Command, IActorRef ReplyTo, bool Sealed)
    {
        /// <summary>Unsealed requests come only from the node-local API or from this function itself.</summary>
        public bool ByOperator(string requesterId) => !Sealed && requesterId == Operator.Id;
    }

    /// <summary>A change waiting for its key epoch: what the group will look like.</summary>
    private sealed record InFlight(Request Request, IReadOnlyList<string> Members, string? Removed);

    /// <summary>Internal: a periodic or forced rekey with unchanged membership.</summary>
    private sealed record Rekey(string GroupId) : IWithGroupId;

    private readonly IActorRef _cskmf;
    private readonly SecureLink _link;
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _deleted = new(StringComparer.Ordinal);
    // Members that left stay placed where they were, so that the notice of their removal reaches their PN GW.
    private readonly Placements _placements = new();
    private readonly Dictionary<string, InFlight> _inFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Queue<Request>> _waiting = new(StringComparer.Ordinal);

    public ServerSmf(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings) : base(settings)
    {
        _cskmf = cskmf;
        _link = new SecureLink(Context, identity, settings, Log);
        _backpressure = new Backpressure(Self, settings.Load.BusyMailboxDepth, "server-smf");
        _keyFunction = new Backpressure(cskmf, settings.Load.BusyMailboxDepth, "server-smf");
    }

    private readonly Backpressure _backpressure;
    private readonly Backpressure _keyFunction;

    /// <summary>
    /// A change that costs a rekey waits while the key function it needs is behind (its mailbox past the busy depth) or
    /// the node is: its deliveries would only queue behind the ones under way.
    /// </summary>
    private BusyAnswer? RekeyTurnedAway() =>
        _keyFunction.Backlog() is > 0 and var keysWaiting
            ? _keyFunction.TurnAway(keysWaiting)
            : _backpressure.NodeBehind(Context.System, Settings.Load.BusyLag);

    public static Props Props(EntityIdentity identity, IActorRef cskmf, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerSmf>(identity, cskmf, settings);

    public override string PersistenceId => $"smf-{Settings.ServerId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override object CreateSnapshot() => new SmfSnapshot(
        _groups.Values.Select(g => g.ToEntry()).ToList(),
        _deleted.Select(kv => new DeletedGroupEntry(kv.Key, kv.Value)).ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: SmfSnapshot snapshot }:
                _groups.Clear();
                foreach (var entry in snapshot.Groups)
                    _groups[entry.GroupId] = Group.From(entry);
                foreach (var deleted in snapshot.DeletedGroups)
                    _deleted[deleted.GroupId] = deleted.FinalEpoch;
                break;
            case ICpnsEvent @event:
                Apply(@event, recovering: true);
                break;
        }
    }

    private void Apply(ICpnsEvent @event, bool recovering = false)
    {
        var now = recovering ? 0 : NowMs;
        switch (@event)
        {
            case GroupCreatedEvent created:
                var group = new Group(created.GroupId, created.Owner, created.Mode, created.RequiredSecurityLevel, created.JoinPolicy)
                {
                    Epoch = created.Epoch,
                    LastRekeyMs = now,
                };
                group.Members.UnionWith(created.Members);
                group.Acl[created.Owner] = Privilege.Administer;
                foreach (var member in created.Members)
                    group.Acl[member] = (Privilege)Math.Max((int)group.Acl.GetValueOrDefault(member), (int)Privilege.Operate);
                _groups[group.Id] = group;
                _deleted.Remove(group.Id);
                break;
            case MemberAddedEvent added:
                var addTo = _groups[added.GroupId];
                addTo.Members.Add(added.MemberId);
                addTo.Acl[added.MemberId] = (Privilege)Math.Max((int)addTo.Acl.GetValueOrDefault(added.MemberId), (int)added.Privilege);
                addTo.Epoch = added.Epoch;
                addTo.LastRekeyMs = now;
                break;
            case MemberRemovedEvent removed:
                var removeFrom = _groups[removed.GroupId];
                removeFrom.Members.Remove(removed.MemberId);
                if (removeFrom.Acl.GetValueOrDefault(removed.MemberId) <= Privilege.Operate)
                    removeFrom.Acl.Remove(removed.MemberId);
                removeFrom.Epoch = removed.Epoch;
                removeFrom.LastRekeyMs = now;
                break;
            case PrivilegeGrantedEvent granted:
                if (granted.Privilege == Privilege.None)
                    _groups[granted.GroupId].Acl.Remove(granted.SubjectId);
                else
                    _groups[granted.GroupId].Acl[granted.SubjectId] = granted.Privilege;
                break;
            case GroupRekeyedEvent rekeyed:
                _groups[rekeyed.GroupId].Epoch = rekeyed.Epoch;
                _groups[rekeyed.GroupId].LastRekeyMs = now;
                break;
            case GroupDeletedEvent deleted:
                _groups.Remove(deleted.GroupId);
                _deleted[deleted.GroupId] = deleted.FinalEpoch;
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                    OnSigned(inner, senderId);
                break;
            case GatewayPlaced placed:
                var levelBefore = _placements.KnownGateway(placed.GatewayId)?.PnSecurityLevel;
                _placements.ApplyAndTrust(placed, _link.Guard, trustPnes: true);
                if (levelBefore is { } before && before != placed.PnSecurityLevel)
                    RekeyForLevel(placed.GatewayId, before, placed.PnSecurityLevel);
                break;
            case PnesPlaced placed:
                _placements.ApplyAndTrust(placed, _link.Guard, trustPnes: true);
                break;
            case EntitiesRemoved removed:
                _placements.ApplyAndTrust(removed, _link.Guard, trustPnes: true);
                OnEntitiesRemoved(removed);
                break;
            case PneMoved moved:
                // Its groups rekey: the new epoch goes through the PNE's new PN GW, and the old one hears it is gone.
                foreach (var group in _groups.Values.Where(g => g.Members.Contains(moved.DeviceId)))
                    Enqueue(new Request(new Rekey(group.Id), ActorRefs.Nobody, Sealed: false));
                break;
            case LocalRequest { Request: CreateGroup or AddMember or RemoveMember or DeleteGroup } local
                when RekeyTurnedAway() is { } busy:
                // The operator's changes too: each costs a rekey, whose deliveries would queue behind everyone's.
                Sender.Tell(new GroupRejected(((IWithGroupId)local.Request).GroupId, GroupError.Busy, busy.Detail, busy.RetryAfterMs));
                break;
            case LocalRequest { Request: CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege } local:
                Enqueue(new Request(local.Request, Sender, Sealed: false));
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege:
                Sender.Tell(new GroupRejected(((IWithGroupId)message).GroupId, GroupError.NotAuthorized,
                    "a group request comes signed by its requester, or through this node's own API"));
                break;
            case RekeyDue due:
                if (_groups.ContainsKey(due.GroupId) && !_inFlight.ContainsKey(due.GroupId))
                    Enqueue(new Request(new Rekey(due.GroupId), ActorRefs.Nobody, Sealed: false));
                break;
            case GroupKeyReady ready:
                OnKeyReady(ready);
                break;
            case GroupKeyFailed failed:
                OnKeyFailed(failed);
                break;
            case GroupKeyRevoked revoked:
                OnRevoked(revoked);
                break;
            case GetGroup query:
                Sender.Tell(_groups.TryGetValue(query.GroupId, out var g)
                    ? new GroupState(g.Id, g.Mode, g.Epoch, g.Members.ToList(), true, g.RequiredLevel, g.ToEntry().Acl)
                    : new GroupState(query.GroupId, DeliveryMode.Pull, _deleted.GetValueOrDefault(query.GroupId), [], false));
                break;
            case ListGroups:
                Sender.Tell(new GroupList(_groups.Values.OrderBy(x => x.Id, StringComparer.Ordinal)
                    .Select(x => new GroupState(x.Id, x.Mode, x.Epoch, x.Members.ToList(), true, x.RequiredLevel, x.ToEntry().Acl))
                    .ToList()));
                break;
            case AuthorizeView authorize:
                Sender.Tell(AuthorizeViewing(authorize));
                break;
            case GetPrivileges query:
                Sender.Tell(new Privileges(query.SubjectId, _groups.Values
                    .Where(g => g.PrivilegeOf(query.SubjectId) > Privilege.None)
                    .ToDictionary(g => g.Id, g => g.PrivilegeOf(query.SubjectId), StringComparer.Ordinal)));
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

    /// <summary>
    /// A PN's security level changed: each group with members there whose requirement the PN now meets, or no longer
    /// meets, gets a new epoch — which the CSKMF delivers into that PN only if it meets the requirement.
    /// </summary>
    private void RekeyForLevel(string gatewayId, SecurityLevel before, SecurityLevel after)
    {
        var (low, high) = before < after ? (before, after) : (after, before);
        foreach (var group in _groups.Values.Where(g => g.RequiredLevel > low && g.RequiredLevel <= high &&
                                                        g.Members.Any(m => GatewayOf(m) == gatewayId)))
        {
            Log.Info("smf: the PN of {0} went from {1} to {2} security; {3} (needs {4}) rekeys", gatewayId, before, after, group.Id,
                group.RequiredLevel);
            Enqueue(new Request(new Rekey(group.Id), ActorRefs.Nobody, Sealed: false));
        }
    }

    /// <summary>A signed request: the requester it names must be the entity that signed it.</summary>
    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case SyncGroups sync when sync.DeviceId == senderId && _placements.KnownGateway(senderId) is not null:
                Resync(senderId);
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege:
                var requester = message switch
                {
                    CreateGroup c => c.RequesterId,
                    AddMember a => a.RequesterId,
                    RemoveMember r => r.RequesterId,
                    DeleteGroup d => d.RequesterId,
                    GrantPrivilege p => p.RequesterId,
                    _ => "",
                };
                if (requester != senderId)
                {
                    _link.Send(Sender, new GroupRejected(((IWithGroupId)message).GroupId, GroupError.NotAuthorized,
                        $"request names {requester} but is signed by {senderId}"));
                    return;
                }

                // A membership change costs a rekey: wrapping and signing for every PN GW of the group.
                var turnedAway = _backpressure.Backlog() is > 0 and var backlog ? _backpressure.TurnAway(backlog)
                    : message is GrantPrivilege ? null
                    : RekeyTurnedAway();
                if (turnedAway is { } busy)
                {
                    _link.Send(Sender, new GroupRejected(((IWithGroupId)message).GroupId, GroupError.Busy, busy.Detail, busy.RetryAfterMs));
                    return;
                }

                Enqueue(new Request(message, Sender, Sealed: true));
                break;
            default:
                Log.Warning("smf: unexpected signed {0} from {1}", message.GetType().Name, senderId);
                break;
        }
    }

    private void Reply(Request request, object answer)
    {
        if (request.ReplyTo.IsNobody())
            return;
        if (request.Sealed)
            _link.Send(request.ReplyTo, answer);
        else
            request.ReplyTo.Tell(answer);
    }

    private void Refuse(Request request, GroupError error, string detail)
    {
        var groupId = ((IWithGroupId)request.Command).GroupId;
        Log.Info("smf: {0} on {1} refused: {2} ({3})", request.Command.GetType().Name, groupId, error, detail);
        Reply(request, new GroupRejected(groupId, error, detail));
    }

    private void Enqueue(Request request)
    {
        var groupId = ((IWithGroupId)request.Command).GroupId;
        if (_inFlight.ContainsKey(groupId))
        {
            if (!_waiting.TryGetValue(groupId, out var queue))
                _waiting[groupId] = queue = new Queue<Request>();
            queue.Enqueue(request);
            return;
        }

        Start(request);
    }

    private void StartNext(string groupId)
    {
        while (!_inFlight.ContainsKey(groupId) && _waiting.TryGetValue(groupId, out var queue) && queue.Count > 0)
            Start(queue.Dequeue());
        if (_waiting.TryGetValue(groupId, out var q) && q.Count == 0)
            _waiting.Remove(groupId);
    }

    private bool IsRegistered(string id) => GatewayOf(id) is not null && !_placements.HasLeft(id);

    /// <summary>Why a member cannot be reached with this group's key, if it cannot.</summary>
    private (GroupError Error, string Detail)? Unreachable(string memberId, SecurityLevel required)
    {
        if (!IsRegistered(memberId))
            return (GroupError.UnknownMember, $"{memberId} is not registered");
        var gatewayId = GatewayOf(memberId)!;
        var level = Gateway(gatewayId).PnSecurityLevel;
        return level < required
            ? (GroupError.InsufficientSecurityLevel, $"the PN of {memberId} (behind {gatewayId}) offers {level} security; the group needs {required}")
            : null;
    }

    private void Start(Request request)
    {
        switch (request.Command)
        {
            case CreateGroup create:
                if (!DeviceIds.IsValid(create.GroupId))
                {
                    Refuse(request, GroupError.InvalidRequest, "a group id is 1 to 128 letters, digits, '-', '_', '.' or ':'");
                    return;
                }

                if (!request.ByOperator(create.RequesterId) && !IsRegistered(create.RequesterId))
                {
                    Refuse(request, GroupError.NotAuthorized, $"{create.RequesterId} is not a registered entity");
                    return;
                }

                if (_groups.ContainsKey(create.GroupId))
                {
                    Refuse(request, GroupError.GroupExists, $"group {create.GroupId} exists");
                    return;
                }

                var members = create.Members.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                foreach (var member in members)
                {
                    if (Unreachable(member, create.RequiredSecurityLevel) is { } problem)
                    {
                        Refuse(request, problem.Error, problem.Detail);
                        return;
                    }
                }

                RequestEpoch(create.GroupId, create.Mode, create.RequiredSecurityLevel, KeyOperation.Create,
                    new InFlight(request, members, null));
                break;

            case AddMember add:
                if (!_groups.TryGetValue(add.GroupId, out var addTo))
                {
                    Refuse(request, GroupError.UnknownGroup, $"no group {add.GroupId}");
                    return;
                }

                var selfJoin = add.RequesterId == add.MemberId && addTo.JoinPolicy == JoinPolicy.Open &&
                               add.Privilege <= Privilege.Operate;
                var granted = addTo.PrivilegeOf(request, add.RequesterId);
                if (!selfJoin && (granted < Privilege.Manage || add.Privilege > granted))
                {
                    Refuse(request, GroupError.NotAuthorized,
                        $"{add.RequesterId} holds {granted} on {add.GroupId}; adding {add.MemberId} as {add.Privilege} needs Manage and at least {add.Privilege}");
                    return;
                }

                if (add.Privilege < Privilege.Operate)
                {
                    Refuse(request, GroupError.InvalidRequest, "a member holds at least Operate (it receives the key)");
                    return;
                }

                if (Unreachable(add.MemberId, addTo.RequiredLevel) is { } unreachable)
                {
                    Refuse(request, unreachable.Error, unreachable.Detail);
                    return;
                }

                if (addTo.Members.Contains(add.MemberId))
                {
                    Refuse(request, GroupError.AlreadyMember, $"{add.MemberId} is a member");
                    return;
                }

                RequestEpoch(add.GroupId, addTo.Mode, addTo.RequiredLevel, KeyOperation.Update,
                    new InFlight(request, addTo.Members.Append(add.MemberId).Order(StringComparer.Ordinal).ToList(), null));
                break;

            case RemoveMember remove:
                if (!_groups.TryGetValue(remove.GroupId, out var removeFrom))
                {
                    Refuse(request, GroupError.UnknownGroup, $"no group {remove.GroupId}");
                    return;
                }

                if (remove.RequesterId != remove.MemberId && removeFrom.PrivilegeOf(request, remove.RequesterId) < Privilege.Manage)
                {
                    Refuse(request, GroupError.NotAuthorized, $"{remove.RequesterId} may not remove {remove.MemberId} from {remove.GroupId}");
                    return;
                }

                if (!removeFrom.Members.Contains(remove.MemberId))
                {
                    Refuse(request, GroupError.NotMember, $"{remove.MemberId} is not a member");
                    return;
                }

                RequestEpoch(remove.GroupId, removeFrom.Mode, removeFrom.RequiredLevel, KeyOperation.Update,
                    new InFlight(request, removeFrom.Members.Where(m => m != remove.MemberId).ToList(), remove.MemberId));
                break;

            case GrantPrivilege grant:
                if (!_groups.TryGetValue(grant.GroupId, out var grantOn))
                {
                    Refuse(request, GroupError.UnknownGroup, $"no group {grant.GroupId}");
                    return;
                }

                var own = grantOn.PrivilegeOf(request, grant.RequesterId);
                if (own < Privilege.Administer || grant.Privilege > own)
                {
                    Refuse(request, GroupError.NotAuthorized, $"{grant.RequesterId} holds {own}; granting needs Administer");
                    return;
                }

                if (grantOn.Members.Contains(grant.SubjectId) && grant.Privilege < Privilege.Operate)
                {
                    Refuse(request, GroupError.InvalidRequest, $"{grant.SubjectId} is a member; remove it to take its key away");
                    return;
                }

                _inFlight[grant.GroupId] = new InFlight(request, grantOn.Members.ToList(), null);
                Persist(new PrivilegeGrantedEvent(grant.GroupId, grant.SubjectId, grant.Privilege), e =>
                {
                    _inFlight.Remove(e.GroupId);
                    Apply(e);
                    Reply(request, new GroupAccepted(e.GroupId, GroupChange.PrivilegeGranted, grantOn.Epoch, grantOn.Members.ToList()));
                    StartNext(e.GroupId);
                });
                break;

            case DeleteGroup delete:
                if (!_groups.TryGetValue(delete.GroupId, out var toDelete))
                {
                    Refuse(request, GroupError.UnknownGroup, $"no group {delete.GroupId}");
                    return;
                }

                if (toDelete.PrivilegeOf(request, delete.RequesterId) < Privilege.Administer)
                {
                    Refuse(request, GroupError.NotAuthorized, $"{delete.RequesterId} may not delete {delete.GroupId}");
                    return;
                }

                _inFlight[delete.GroupId] = new InFlight(request, toDelete.Members.ToList(), null);
                FlowTrace.Send(Context, _cskmf, new RevokeGroupKey(delete.GroupId), delete.GroupId, toDelete.Epoch, 1,
                    FlowKind.Revoke, FlowLeg.ServerToGateway);
                break;

            case Rekey rekey:
                if (!_groups.TryGetValue(rekey.GroupId, out var group))
                {
                    Log.Debug("smf: {0} was deleted before its rekey came up", rekey.GroupId);
                    return;
                }

                RequestEpoch(group.Id, group.Mode, group.RequiredLevel, KeyOperation.Update,
                    new InFlight(request, group.Members.ToList(), null));
                break;
        }
    }

    /// <summary>Step 1: the CSKMF is asked for a key for the group as it will be, with where its members are.</summary>
    private void RequestEpoch(string groupId, DeliveryMode mode, SecurityLevel required, KeyOperation operation, InFlight inFlight)
    {
        _inFlight[groupId] = inFlight;
        var current = _groups.TryGetValue(groupId, out var g) ? g.Epoch : _deleted.GetValueOrDefault(groupId);
        FlowTrace.Send(Context, _cskmf, new RequestGroupKey(groupId, operation, mode, required, Targets(inFlight.Members)), groupId,
            current + 1, 1, mode.ToFlowKind(), FlowLeg.ServerToGateway);
    }

    private IReadOnlyList<KeyDeliveryTarget> Targets(IEnumerable<string> members) =>
        members.Where(IsRegistered)
            .GroupBy(m => GatewayOf(m)!, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var gateway = Gateway(g.Key);
                return new KeyDeliveryTarget(gateway.GatewayId, gateway.Endpoints.Cskmf, gateway.Keys.Agreement,
                    gateway.PnSecurityLevel, g.ToList());
            })
            .ToList();

    private string? GatewayOf(string deviceId) => _placements.LastGatewayOf(deviceId);

    private GatewayPlaced Gateway(string gatewayId) => _placements.KnownGateway(gatewayId)!;

    private void OnKeyReady(GroupKeyReady ready)
    {
        if (!_inFlight.TryGetValue(ready.GroupId, out var inFlight))
        {
            Log.Warning("key {0}#{1} is ready but no change of that group is waiting", ready.GroupId, ready.Epoch);
            return;
        }

        var (@event, change) = inFlight.Request.Command switch
        {
            CreateGroup create => ((ICpnsEvent)new GroupCreatedEvent(create.GroupId, create.RequesterId, create.Mode, ready.Epoch,
                inFlight.Members, create.RequiredSecurityLevel, create.JoinPolicy), GroupChange.Created),
            AddMember add => (new MemberAddedEvent(add.GroupId, add.MemberId, ready.Epoch, add.Privilege), GroupChange.MemberAdded),
            RemoveMember remove => (new MemberRemovedEvent(remove.GroupId, remove.MemberId, ready.Epoch), GroupChange.MemberRemoved),
            Rekey rekey => (new GroupRekeyedEvent(rekey.GroupId, ready.Epoch), GroupChange.Rekeyed),
            _ => throw new InvalidOperationException($"unexpected change {inFlight.Request.Command.GetType().Name}"),
        };

        // The group stays busy until the event is durable, so later changes wait for it.
        Persist(@event, e =>
        {
            _inFlight.Remove(ready.GroupId);
            Apply(e);
            var group = _groups[ready.GroupId];
            Reply(inFlight.Request, new GroupAccepted(group.Id, change, group.Epoch, group.Members.ToList()));
            Announce(group, change == GroupChange.Created ? NoticeKind.Created : NoticeKind.Updated, inFlight.Removed);
            if (group.Mode == DeliveryMode.Push)
                _cskmf.Tell(new DeliverGroupKey(group.Id, group.Epoch));
            SnapshotIfDue();
            StartNext(ready.GroupId);
        });
    }

    /// <summary>
    /// A PN GW that registered again hears the current epoch of every group with members behind it (step 7), and
    /// the push groups push it there. Groups busy with a change catch up when that change is announced.
    /// </summary>
    private void Resync(string gatewayId)
    {
        foreach (var group in _groups.Values.Where(g => !_inFlight.ContainsKey(g.Id)))
        {
            var local = group.Members.Where(m => GatewayOf(m) == gatewayId).ToList();
            if (local.Count == 0)
                continue;
            var notice = new GroupNotice(group.Id, group.Epoch, group.Mode, NoticeKind.Updated, _cskmf, local, []);
            FlowTrace.Send(Context, Gateway(gatewayId).Endpoints.Smf, _link.SealFor(Gateway(gatewayId).Endpoints.Smf, notice), group.Id,
                group.Epoch, 7,
                group.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
            if (group.Mode == DeliveryMode.Push)
                _cskmf.Tell(new DeliverGroupKey(group.Id, group.Epoch, gatewayId));
        }
    }

    /// <summary>Step 7: every PN GW that reaches a member (or reached a removed one) hears of the new epoch, signed.</summary>
    private void Announce(Group group, NoticeKind kind, string? removed)
    {
        var byGateway = group.Members
            .Where(m => GatewayOf(m) is not null)
            .GroupBy(m => GatewayOf(m)!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var removedAt = removed is null ? null : GatewayOf(removed);
        if (removedAt is not null)
            byGateway.TryAdd(removedAt, []);

        foreach (var (gatewayId, localMembers) in byGateway.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var notice = new GroupNotice(group.Id, group.Epoch, group.Mode, kind, _cskmf, localMembers,
                gatewayId == removedAt ? [removed!] : []);
            FlowTrace.Send(Context, Gateway(gatewayId).Endpoints.Smf, _link.SealFor(Gateway(gatewayId).Endpoints.Smf, notice), group.Id,
                group.Epoch, 7,
                group.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
        }
    }

    private void OnKeyFailed(GroupKeyFailed failed)
    {
        if (!_inFlight.Remove(failed.GroupId, out var inFlight))
            return;
        Reply(inFlight.Request, new GroupRejected(failed.GroupId, GroupError.KeyUnavailable, failed.Detail));
        StartNext(failed.GroupId);
    }

    private void OnRevoked(GroupKeyRevoked revoked)
    {
        if (!_inFlight.TryGetValue(revoked.GroupId, out var inFlight) || inFlight.Request.Command is not DeleteGroup)
            return;
        var group = _groups[revoked.GroupId];
        var gateways = group.Members.Select(GatewayOf).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        Persist(new GroupDeletedEvent(revoked.GroupId, revoked.FinalEpoch), e =>
        {
            _inFlight.Remove(e.GroupId);
            Apply(e);
            Reply(inFlight.Request, new GroupAccepted(e.GroupId, GroupChange.Deleted, e.FinalEpoch, []));
            foreach (var gatewayId in gateways)
                FlowTrace.Send(Context, Gateway(gatewayId).Endpoints.Smf,
                    _link.SealFor(Gateway(gatewayId).Endpoints.Smf, new GroupDeletedNotice(e.GroupId, e.FinalEpoch)),
                    e.GroupId, e.FinalEpoch, 5, FlowKind.Revoke, FlowLeg.ServerToGateway);
            SnapshotIfDue();
            StartNext(e.GroupId);
        });
    }

    /// <summary>
    /// A watcher may see an entity's status if it shares a group with it in which the watcher holds at least View.
    /// </summary>
    private ViewAuthorization AuthorizeViewing(AuthorizeView authorize)
    {
        foreach (var target in authorize.Targets)
        {
            if (target == authorize.WatcherId)
                continue;
            var visible = _groups.Values.Any(g =>
                (g.Members.Contains(target) || g.Acl.ContainsKey(target)) && g.PrivilegeOf(authorize.WatcherId) >= Privilege.View);
            if (!visible)
                return new ViewAuthorization(authorize.RequestId, false,
                    $"{authorize.WatcherId} holds no View privilege on a group of {target}");
        }

        return new ViewAuthorization(authorize.RequestId, true, "");
    }

    /// <summary>
    /// Entities that left the inventory (expired, revoked) leave their groups, which rekey without them, and lose every
    /// privilege they held on any group. Their
    /// placement is kept, so the removal notices still reach the PN GW they were behind, but they can no longer
    /// be added or sign anything.
    /// </summary>
    private void OnEntitiesRemoved(EntitiesRemoved removed)
    {
        foreach (var id in removed.DeviceIds)
        {
            foreach (var group in _groups.Values.Where(g => g.Members.Contains(id)))
                Enqueue(new Request(new RemoveMember(group.Id, Operator.Id, id), ActorRefs.Nobody, Sealed: false));
            // Its privileges go too (a manager's or administrator's above all): nothing of them waits for whoever comes next.
            foreach (var group in _groups.Values.Where(g =>
                         g.Acl.TryGetValue(id, out var held) && (held > Privilege.Operate || !g.Members.Contains(id))))
                Enqueue(new Request(new GrantPrivilege(group.Id, Operator.Id, id, Privilege.None), ActorRefs.Nobody, Sealed: false));
        }
    }
}
