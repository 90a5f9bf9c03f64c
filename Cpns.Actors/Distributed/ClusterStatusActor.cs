using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Distributed;

/// <summary>
/// Every node's <c>cluster-status</c>: the members and roles as this node sees them, which gateway node hosts which
/// group's Group Key Manager (asked of each gateway node's shard region), and each group's current epoch with the
/// PN GWs that acknowledged it (asked of the server node). What <c>cpns status</c> prints.
/// </summary>
public sealed class ClusterStatusActor : ReceiveActor
{
    private readonly TimeSpan _askTimeout = CpnsSettings.From(Context.System).Cluster.StatusTimeout;
    private readonly IActorRef? _localKeyManagers;

    public static Props Props(IActorRef? localKeyManagers) => Akka.Actor.Props.Create(typeof(ClusterStatusActor), localKeyManagers);

    public ClusterStatusActor(IActorRef? localKeyManagers)
    {
        _localKeyManagers = localKeyManagers;
        var system = Context.System;
        var node = Cluster.Get(system).SelfAddress.ToString();
        ReceiveAsync<GetLocalGroupKeyManagers>(async _ =>
        {
            var sender = Sender;
            sender.Tell(await LocalManagersAsync(node));
        });
        Receive<GetClusterStatus>(_ => StatusAsync(system, node, _askTimeout).PipeTo(Sender));
    }

    private async Task<LocalGroupKeyManagers> LocalManagersAsync(string node)
    {
        if (_localKeyManagers is null)
            return new LocalGroupKeyManagers(node, []);
        var state = await _localKeyManagers.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, _askTimeout);
        return new LocalGroupKeyManagers(node, state.Shards.SelectMany(s => s.EntityIds).Order(StringComparer.Ordinal).ToList());
    }

    private static async Task<ClusterStatus> StatusAsync(ActorSystem system, string node, TimeSpan askTimeout)
    {
        var state = Cluster.Get(system).State;
        var members = state.Members
            .Select(m => new ClusterMemberStatus(m.Address.ToString(), m.Status.ToString(), m.Roles.Order(StringComparer.Ordinal).ToList(),
                !state.Unreachable.Contains(m)))
            .ToList();

        var managers = new List<GroupManagerPlacement>();
        foreach (var member in state.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(ClusterNodes.GatewayRole) &&
                                                        !state.Unreachable.Contains(m)))
        {
            try
            {
                var local = await system.ActorSelection(new RootActorPath(member.Address) / "user" / ClusterNodes.StatusActorName)
                    .Ask<LocalGroupKeyManagers>(GetLocalGroupKeyManagers.Instance, askTimeout);
                managers.AddRange(local.GroupIds.Select(g => new GroupManagerPlacement(g, local.Node)));
            }
            catch (Exception e) when (e is AskTimeoutException or ActorNotFoundException)
            {
                // a node that is going away; it hosts nothing we can count on
            }
        }

        var groups = new List<GroupStatusLine>();
        var server = state.Members.FirstOrDefault(m => m.Status == MemberStatus.Up && m.HasRole(ClusterNodes.ServerRole));
        if (server is not null)
        {
            var root = new RootActorPath(server.Address) / "user" / Deployment.ServerActorName;
            try
            {
                var list = await system.ActorSelection(root / "smf").Ask<GroupList>(ListGroups.Instance, askTimeout);
                foreach (var group in list.Groups)
                {
                    var acks = await system.ActorSelection(root / "cskmf").Ask<KeyAcks>(new GetKeyAcks(group.GroupId), askTimeout);
                    groups.Add(new GroupStatusLine(group.GroupId, acks.Epoch, group.Members.Count,
                        managers.FirstOrDefault(m => m.GroupId == group.GroupId)?.Node, acks.Acknowledged, acks.Pending));
                }
            }
            catch (AskTimeoutException)
            {
                // the server node is busy or going away: members and managers only
            }
        }

        return new ClusterStatus(node, members, managers.OrderBy(m => m.GroupId, StringComparer.Ordinal).ToList(), groups);
    }
}
