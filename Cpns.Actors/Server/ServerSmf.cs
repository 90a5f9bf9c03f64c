using Akka.Event;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server's Service Management Function: service groups and their members. Every change asks the
/// CSKMF for a new key epoch (step 1), is persisted when the key is ready (step 6), acknowledged, and then
/// announced to the PN GWs that reach members (step 7). Changes to one group are applied one at a time.
/// </summary>
public sealed class ServerSmf : CpnsPersistentActor
{
    private sealed class Group(string id, string owner, DeliveryMode mode)
    {
        public string Id { get; } = id;
        public string Owner { get; } = owner;
        public DeliveryMode Mode { get; } = mode;
        public long Epoch { get; set; }
        public SortedSet<string> Members { get; } = new(StringComparer.Ordinal);
    }

    private sealed record GatewayPlacement(string GatewayId, EntityKind Kind, PublicKeys Keys, GatewayEndpoints Endpoints);

    /// <summary>A change waiting for its key epoch: what the group will look like, and who asked.</summary>
    private sealed record InFlight(object Command, IActorRef ReplyTo, IReadOnlyList<string> Members, string? Added, string? Removed);

    private readonly IActorRef _cskmf;
    private readonly Dictionary<string, Group> _groups = new();
    private readonly Dictionary<string, long> _deleted = new();
    private readonly Dictionary<string, GatewayPlacement> _gateways = new();
    private readonly Dictionary<string, string> _gatewayOfPne = new();
    private readonly Dictionary<string, InFlight> _inFlight = new();
    private readonly Dictionary<string, Queue<(object Command, IActorRef ReplyTo)>> _waiting = new();

    public ServerSmf(IActorRef cskmf, CpnsSettings settings) : base(settings)
    {
        _cskmf = cskmf;
    }

    public static Props Props(IActorRef cskmf, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new ServerSmf(cskmf, settings));

    public override string PersistenceId => $"smf-{Settings.ServerId}";

    protected override object CreateSnapshot() => new SmfSnapshot(
        _groups.Values.Select(g => new GroupSnapshotEntry(g.Id, g.Owner, g.Mode, g.Epoch, g.Members.ToList())).ToList(),
        _deleted.Select(kv => new DeletedGroupEntry(kv.Key, kv.Value)).ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: SmfSnapshot snapshot }:
                _groups.Clear();
                foreach (var entry in snapshot.Groups)
                {
                    var group = new Group(entry.GroupId, entry.Owner, entry.Mode) { Epoch = entry.Epoch };
                    group.Members.UnionWith(entry.Members);
                    _groups[group.Id] = group;
                }

                foreach (var deleted in snapshot.DeletedGroups)
                    _deleted[deleted.GroupId] = deleted.FinalEpoch;
                break;
            case ICpnsEvent @event:
                Apply(@event);
                break;
        }
    }

    private void Apply(ICpnsEvent @event)
    {
        switch (@event)
        {
            case GroupCreatedEvent created:
                var group = new Group(created.GroupId, created.Owner, created.Mode) { Epoch = created.Epoch };
                group.Members.UnionWith(created.Members);
                _groups[group.Id] = group;
                _deleted.Remove(group.Id);
                break;
            case MemberAddedEvent added:
                _groups[added.GroupId].Members.Add(added.MemberId);
                _groups[added.GroupId].Epoch = added.Epoch;
                break;
            case MemberRemovedEvent removed:
                _groups[removed.GroupId].Members.Remove(removed.MemberId);
                _groups[removed.GroupId].Epoch = removed.Epoch;
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
            case GatewayPlaced placed:
                _gateways[placed.GatewayId] = new GatewayPlacement(placed.GatewayId, placed.Kind, placed.Keys, placed.Endpoints);
                break;
            case PnesPlaced placed:
                foreach (var pne in placed.DeviceIds)
                    _gatewayOfPne[pne] = placed.GatewayId;
                break;
            case EntitiesRemoved removed:
                foreach (var id in removed.DeviceIds)
                {
                    _gatewayOfPne.Remove(id);
                    _gateways.Remove(id);
                }

                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup:
                Enqueue(((IWithGroupId)message).GroupId, message);
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
                    ? new GroupState(g.Id, g.Mode, g.Epoch, g.Members.ToList(), true)
                    : new GroupState(query.GroupId, DeliveryMode.Pull, 0, [], false));
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void Enqueue(string groupId, object command)
    {
        if (_inFlight.ContainsKey(groupId))
        {
            if (!_waiting.TryGetValue(groupId, out var queue))
                _waiting[groupId] = queue = new Queue<(object, IActorRef)>();
            queue.Enqueue((command, Sender));
            return;
        }

        Start(command, Sender);
    }

    private void StartNext(string groupId)
    {
        while (!_inFlight.ContainsKey(groupId) && _waiting.TryGetValue(groupId, out var queue) && queue.Count > 0)
        {
            var (command, replyTo) = queue.Dequeue();
            Start(command, replyTo);
        }

        if (_waiting.TryGetValue(groupId, out var q) && q.Count == 0)
            _waiting.Remove(groupId);
    }

    private void Start(object command, IActorRef replyTo)
    {
        switch (command)
        {
            case CreateGroup create:
                if (string.IsNullOrWhiteSpace(create.GroupId))
                {
                    replyTo.Tell(new GroupRejected(create.GroupId, GroupError.InvalidRequest, "a group needs an id"));
                    return;
                }

                if (_groups.ContainsKey(create.GroupId))
                {
                    replyTo.Tell(new GroupRejected(create.GroupId, GroupError.GroupExists, $"group {create.GroupId} exists"));
                    return;
                }

                var members = create.Members.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                if (members.FirstOrDefault(m => GatewayOf(m) is null) is { } unknown)
                {
                    replyTo.Tell(new GroupRejected(create.GroupId, GroupError.UnknownMember, $"{unknown} is not registered"));
                    return;
                }

                RequestEpoch(create.GroupId, create.Mode, KeyOperation.Create,
                    new InFlight(create, replyTo, members, null, null));
                break;

            case AddMember add:
                if (!_groups.TryGetValue(add.GroupId, out var addTo))
                {
                    replyTo.Tell(new GroupRejected(add.GroupId, GroupError.UnknownGroup, $"no group {add.GroupId}"));
                    return;
                }

                if (GatewayOf(add.MemberId) is null)
                {
                    replyTo.Tell(new GroupRejected(add.GroupId, GroupError.UnknownMember, $"{add.MemberId} is not registered"));
                    return;
                }

                if (addTo.Members.Contains(add.MemberId))
                {
                    replyTo.Tell(new GroupRejected(add.GroupId, GroupError.AlreadyMember, $"{add.MemberId} is a member"));
                    return;
                }

                RequestEpoch(add.GroupId, addTo.Mode, KeyOperation.Update,
                    new InFlight(add, replyTo, addTo.Members.Append(add.MemberId).Order(StringComparer.Ordinal).ToList(),
                        add.MemberId, null));
                break;

            case RemoveMember remove:
                if (!_groups.TryGetValue(remove.GroupId, out var removeFrom))
                {
                    replyTo.Tell(new GroupRejected(remove.GroupId, GroupError.UnknownGroup, $"no group {remove.GroupId}"));
                    return;
                }

                if (!removeFrom.Members.Contains(remove.MemberId))
                {
                    replyTo.Tell(new GroupRejected(remove.GroupId, GroupError.NotMember, $"{remove.MemberId} is not a member"));
                    return;
                }

                RequestEpoch(remove.GroupId, removeFrom.Mode, KeyOperation.Update,
                    new InFlight(remove, replyTo, removeFrom.Members.Where(m => m != remove.MemberId).ToList(), null,
                        remove.MemberId));
                break;

            case DeleteGroup delete:
                if (!_groups.TryGetValue(delete.GroupId, out var toDelete))
                {
                    replyTo.Tell(new GroupRejected(delete.GroupId, GroupError.UnknownGroup, $"no group {delete.GroupId}"));
                    return;
                }

                _inFlight[delete.GroupId] = new InFlight(delete, replyTo, toDelete.Members.ToList(), null, null);
                FlowTrace.Send(Context, _cskmf, new RevokeGroupKey(delete.GroupId), delete.GroupId, toDelete.Epoch, 1,
                    FlowKind.Revoke, FlowLeg.ServerToGateway);
                break;
        }
    }

    /// <summary>Step 1: the CSKMF is asked for a key for the group as it will be, with where its members are.</summary>
    private void RequestEpoch(string groupId, DeliveryMode mode, KeyOperation operation, InFlight inFlight)
    {
        _inFlight[groupId] = inFlight;
        var current = _groups.TryGetValue(groupId, out var g) ? g.Epoch : _deleted.GetValueOrDefault(groupId);
        FlowTrace.Send(Context, _cskmf, new RequestGroupKey(groupId, operation, mode, Targets(inFlight.Members)), groupId,
            current + 1, 1, mode.ToFlowKind(), FlowLeg.ServerToGateway);
    }

    private IReadOnlyList<KeyDeliveryTarget> Targets(IEnumerable<string> members) =>
        members.GroupBy(m => GatewayOf(m)!, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var gateway = _gateways[g.Key];
                return new KeyDeliveryTarget(gateway.GatewayId, gateway.Endpoints.Cskmf, gateway.Keys.Agreement,
                    g.ToList());
            })
            .ToList();

    private string? GatewayOf(string deviceId)
    {
        if (_gateways.ContainsKey(deviceId))
            return deviceId;
        return _gatewayOfPne.TryGetValue(deviceId, out var gateway) && _gateways.ContainsKey(gateway) ? gateway : null;
    }

    private void OnKeyReady(GroupKeyReady ready)
    {
        if (!_inFlight.TryGetValue(ready.GroupId, out var inFlight))
        {
            Log.Warning("key {0}#{1} is ready but no change of that group is waiting", ready.GroupId, ready.Epoch);
            return;
        }

        ICpnsEvent @event = inFlight.Command switch
        {
            CreateGroup create => new GroupCreatedEvent(create.GroupId, create.RequesterId, create.Mode, ready.Epoch,
                inFlight.Members),
            AddMember add => new MemberAddedEvent(add.GroupId, add.MemberId, ready.Epoch),
            RemoveMember remove => new MemberRemovedEvent(remove.GroupId, remove.MemberId, ready.Epoch),
            _ => throw new InvalidOperationException($"unexpected change {inFlight.Command.GetType().Name}"),
        };

        // The group stays busy until the event is durable, so later changes wait for it.
        Persist(@event, e =>
        {
            _inFlight.Remove(ready.GroupId);
            Apply(e);
            var group = _groups[ready.GroupId];
            var change = inFlight.Command switch
            {
                CreateGroup => GroupChange.Created,
                AddMember => GroupChange.MemberAdded,
                _ => GroupChange.MemberRemoved,
            };
            inFlight.ReplyTo.Tell(new GroupAccepted(group.Id, change, group.Epoch, group.Members.ToList()));
            Announce(group, change == GroupChange.Created ? NoticeKind.Created : NoticeKind.Updated, inFlight.Removed);
            if (group.Mode == DeliveryMode.Push)
                _cskmf.Tell(new DeliverGroupKey(group.Id, group.Epoch));
            SnapshotIfDue();
            StartNext(ready.GroupId);
        });
    }

    /// <summary>Step 7: every PN GW that reaches a member (or reached a removed one) hears of the new epoch.</summary>
    private void Announce(Group group, NoticeKind kind, string? removed)
    {
        var byGateway = group.Members
            .GroupBy(m => GatewayOf(m)!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var removedAt = removed is null ? null : GatewayOf(removed);
        if (removedAt is not null)
            byGateway.TryAdd(removedAt, []);

        foreach (var (gatewayId, localMembers) in byGateway.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var notice = new GroupNotice(group.Id, group.Epoch, group.Mode, kind, _cskmf, localMembers,
                gatewayId == removedAt ? [removed!] : []);
            FlowTrace.Send(Context, _gateways[gatewayId].Endpoints.Smf, notice, group.Id, group.Epoch, 7,
                group.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
        }
    }

    private void OnKeyFailed(GroupKeyFailed failed)
    {
        if (!_inFlight.Remove(failed.GroupId, out var inFlight))
            return;
        inFlight.ReplyTo.Tell(new GroupRejected(failed.GroupId, GroupError.KeyUnavailable, failed.Detail));
        StartNext(failed.GroupId);
    }

    private void OnRevoked(GroupKeyRevoked revoked)
    {
        if (!_inFlight.TryGetValue(revoked.GroupId, out var inFlight) || inFlight.Command is not DeleteGroup)
            return;
        var group = _groups[revoked.GroupId];
        var gateways = group.Members.Select(m => GatewayOf(m)).OfType<string>().Distinct().Order(StringComparer.Ordinal)
            .ToList();
        Persist(new GroupDeletedEvent(revoked.GroupId, revoked.FinalEpoch), e =>
        {
            _inFlight.Remove(e.GroupId);
            Apply(e);
            inFlight.ReplyTo.Tell(new GroupAccepted(e.GroupId, GroupChange.Deleted, e.FinalEpoch, []));
            foreach (var gatewayId in gateways)
                FlowTrace.Send(Context, _gateways[gatewayId].Endpoints.Smf, new GroupDeletedNotice(e.GroupId, e.FinalEpoch),
                    e.GroupId, e.FinalEpoch, 5, FlowKind.Revoke, FlowLeg.ServerToGateway);
            SnapshotIfDue();
            StartNext(e.GroupId);
        });
    }
}
