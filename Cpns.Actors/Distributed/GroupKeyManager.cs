using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Actors.Common;

namespace Cpns.Actors.Distributed;

/// <summary>
/// The Group Key Manager of one service group (seed §5.3.1.9.5, distributed case): the group's CSKMF, running on a
/// gateway node as a sharded, persistent entity. It creates each epoch's key (persisted wrapped under the KEK before
/// anyone hears of it), registers it at the server's CSKMF on the server node (indirect delivery: members
/// pull from there), delivers it directly when the group is pushed, and destroys the keys when the group is deleted.
/// When its node leaves or crashes, sharding starts it on another gateway node, where it recovers from the journal
/// and carries on from the same epoch: an epoch it made is announced again with the same key, never a new one. Each
/// gateway node's manager has its own identity, credential and KEK, so the node it moved to cannot open the keys the
/// old node made: it makes no other key for those epochs (the registry skips to the next), and leaves their pushes to
/// the server, which holds every epoch.
/// </summary>
public sealed class GroupKeyManager : CpnsPersistentActor
{
    public const string TypeName = "group-key-manager";
    private const int KeptEpochs = 16;

    private readonly string _groupId;
    private readonly EntityIdentity _identity;
    private readonly Credential _credential;
    private readonly KeyEncryptionKey _kek;
    private readonly PairwiseKeys _pairwise;
    private readonly SecureLink _link;
    private readonly string _node;
    private readonly string _serverId;
    private readonly PublicKeys _serverKeys;
    private readonly SortedDictionary<long, GkmEpochCreatedEvent> _epochs = new();
    private long _lastEpoch;
    private long? _revokedAt;

    public GroupKeyManager(string groupId, KeyManagerSecrets secrets, CpnsSettings settings) : base(settings)
    {
        _groupId = groupId;
        _identity = secrets.Identity;
        _credential = secrets.Credential;
        _kek = secrets.Kek;
        _serverId = secrets.Server.ServerId!;
        _serverKeys = secrets.ServerKeys;
        _pairwise = new PairwiseKeys(secrets.Identity);
        _link = new SecureLink(Context, secrets.Identity, settings, Log);
        _link.Guard.Trust(_serverId, _serverKeys.Signing); // it takes commands from the server's CSKMF alone
        _node = Cluster.Get(Context.System).SelfAddress.ToString();
    }

    public static Props Props(string groupId, KeyManagerSecrets secrets, CpnsSettings settings) =>
        Akka.Actor.Props.Create<GroupKeyManager>(groupId, secrets, settings);

    public override string PersistenceId => $"gkm-{_groupId}";

    protected override object CreateSnapshot() => throw new NotSupportedException("a group's epochs are few; no snapshots");

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case GkmEpochCreatedEvent created:
                Apply(created);
                break;
            case GkmRevokedEvent revoked:
                Apply(revoked);
                break;
            case RecoveryCompleted:
                Log.Info("group key manager of {0} on {1}: recovered at epoch {2}{3}", _groupId, _node, _lastEpoch,
                    _revokedAt is null ? "" : " (revoked)");
                break;
        }
    }

    private void Apply(GkmEpochCreatedEvent created)
    {
        _epochs[created.Epoch] = created;
        _lastEpoch = Math.Max(_lastEpoch, created.Epoch);
        while (_epochs.Count > KeptEpochs)
            _epochs.Remove(_epochs.Keys.First());
    }

    private void Apply(GkmRevokedEvent revoked)
    {
        _epochs.Clear();
        _revokedAt = revoked.FinalEpoch;
        _lastEpoch = Math.Max(_lastEpoch, revoked.FinalEpoch);
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ISecureWire wire:
                if (!_link.TryOpen(wire, out var inner, out var senderId))
                    break;
                if (senderId != _serverId || inner is not IWithGroupId { } addressed || addressed.GroupId != _groupId)
                {
                    Log.Warning("group key manager of {0}: {1} from {2} refused", _groupId, inner.GetType().Name, senderId);
                    break;
                }

                OnSigned(inner);
                break;
            case GetGkmState:
                Sender.Tell(new GkmState(_groupId, _node, _lastEpoch, _epochs.Keys.ToList(), _revokedAt is not null));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnSigned(object message)
    {
        switch (message)
        {
            case GkmCreateKey create:
                Create(create);
                break;
            case GkmPush push:
                Push(push);
                break;
            case GkmRevoke revoke:
                Revoke(revoke);
                break;
            default:
                Log.Warning("group key manager of {0}: unexpected {1}", _groupId, message.GetType().Name);
                break;
        }
    }

    private void Create(GkmCreateKey create)
    {
        var registry = Sender;
        if (_revokedAt is not null)
        {
            // Every answer names this manager's credential: the registry may not have met it (a new node, a failover).
            _link.Send(registry, new GkmKeyRefused(_groupId, create.Epoch, GkmRefusal.Revoked, _lastEpoch, $"{_groupId} was deleted")
            {
                ManagerCredential = _credential,
            });
            return;
        }

        if (_epochs.TryGetValue(create.Epoch, out var made) && Opens(made))
        {
            // Asked again (the answer was lost, or the registry retried across a failover): the same key, never another.
            Register(made, registry, created: false);
            return;
        }

        if (create.Epoch <= _lastEpoch)
        {
            // Made here before, or by another node's manager before a failover (sealed under its KEK): never another key.
            _link.Send(registry, new GkmKeyRefused(_groupId, create.Epoch, GkmRefusal.StaleEpoch, _lastEpoch,
                $"{_groupId} is at epoch {_lastEpoch}") { ManagerCredential = _credential });
            return;
        }

        var key = GroupKey.Generate(_groupId, create.Epoch);
        var @event = new GkmEpochCreatedEvent(_groupId, create.Epoch, create.Parameters, _kek.Wrap(key), key.KeyCheck);
        key.Dispose();
        Persist(@event, e =>
        {
            Apply(e);
            Register(e, registry, created: true);
        });
    }

    private void Register(GkmEpochCreatedEvent epoch, IActorRef registry, bool created)
    {
        Context.System.EventStream.Publish(new GkmEpochAnnounced(_groupId, epoch.Epoch, epoch.KeyCheck, _node, created));
        using var key = _kek.Unwrap(_groupId, epoch.Epoch, epoch.KeyUnderKek);
        // Wrapped for the server alone: the managers' KEK is theirs, the server's KEK the server's.
        var forServer = key.WrapFor(_pairwise, _serverId, _serverKeys.Agreement);
        FlowTrace.Send(Context, registry,
            _link.SealFor(registry, new GkmKeyIssued(_groupId, epoch.Epoch, epoch.Parameters, forServer, epoch.KeyCheck, _node)
            {
                ManagerCredential = _credential,
            }),
            _groupId, epoch.Epoch, 5, epoch.Parameters.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
    }

    private void Push(GkmPush push)
    {
        var epoch = _epochs.GetValueOrDefault(push.Epoch);
        // Null also when another node's manager made the epoch (before a failover): its key is sealed under that node's KEK.
        using var key = epoch is null ? null : _kek.TryUnwrap(_groupId, epoch.Epoch, epoch.KeyUnderKek);
        if (epoch is null || key is null)
        {
            var problem = epoch is null ? $"it does not hold epoch {push.Epoch}" : $"epoch {push.Epoch} was made by another node's key manager";
            _link.Send(Sender, new GkmPushDeclined(_groupId, push.Epoch, problem) { ManagerCredential = _credential });
            return;
        }

        if (push.Broadcast is { } broadcast && broadcast.Epoch == push.Epoch && broadcast.KeyCheck == epoch.KeyCheck)
        {
            var sealedBroadcast = _link.Seal(broadcast with { ManagerCredential = _credential });
            foreach (var target in push.BroadcastTargets ?? [])
                FlowTrace.Send(Context, target.GatewayCskmf, sealedBroadcast, _groupId, push.Epoch, 8, FlowKind.Push,
                    FlowLeg.ServerToGateway);
        }

        foreach (var target in push.Targets)
        {
            var delivery = key.DeliveryFor(_pairwise, target.GatewayId, target.GatewayAgreementKey, push.Mode, target.LocalMembers,
                push.Announcement, push.Paths?.GetValueOrDefault(target.GatewayId)) with { ManagerCredential = _credential };
            FlowTrace.Send(Context, target.GatewayCskmf, _link.Seal(delivery), _groupId, push.Epoch, 8, FlowKind.Push,
                FlowLeg.ServerToGateway);
        }
    }

    private void Revoke(GkmRevoke revoke)
    {
        var registry = Sender;
        if (_revokedAt is not null)
        {
            _link.Send(registry, new GkmRevoked(_groupId, _revokedAt.Value) { ManagerCredential = _credential });
            return;
        }

        Persist(new GkmRevokedEvent(_groupId, Math.Max(revoke.FinalEpoch, _lastEpoch)), e =>
        {
            Apply(e);
            Log.Info("group key manager of {0}: keys destroyed up to epoch {1}", _groupId, e.FinalEpoch);
            _link.Send(registry, new GkmRevoked(_groupId, e.FinalEpoch) { ManagerCredential = _credential });
        });
    }

    /// <summary>Whether this node's KEK opens the epoch's key (false: another node's manager made it).</summary>
    private bool Opens(GkmEpochCreatedEvent epoch)
    {
        using var key = _kek.TryUnwrap(_groupId, epoch.Epoch, epoch.KeyUnderKek);
        return key is not null;
    }
}

/// <summary>
/// Routes messages for a group's Group Key Manager by group id. Signed messages travel in a
/// <see cref="ShardingEnvelope"/> (which sharding unwraps itself); the shard is a hash of the group id that is the same
/// on every node.
/// </summary>
public sealed class GroupKeyManagerExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    public override string? EntityId(object message) => (message as IWithGroupId)?.GroupId;
}
