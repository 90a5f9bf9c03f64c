using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Cpns.Actors.Protocol;
using Cpns.Actors.Server;

namespace Cpns.Actors.Distributed;

/// <summary>
/// The distributed CPNS Server on Akka.Cluster (design §4): nodes with role <c>server</c> run the server
/// entity, whose CSKMF keeps every group's epochs; nodes with role <c>gateway</c> host PN GWs and the Group Key
/// Managers, one per service group, sharded and restricted to that role. Everything starts once the node is Up.
/// </summary>
public static class ClusterNodes
{
    public const string ServerRole = "server";
    public const string GatewayRole = "gateway";
    public const string StatusActorName = "cluster-status";

    /// <summary>
    /// A node's configuration with the cluster tools' own defaults (their serializers above all) below it, so a node
    /// understands sharding messages from the moment it joins, before its own regions start.
    /// </summary>
    public static Akka.Configuration.Config WithClusterDefaults(Akka.Configuration.Config config) =>
        config.WithFallback(ClusterSharding.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig());

    public static Task WhenUpAsync(ActorSystem system)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task;
    }

    /// <summary>
    /// A server node, once Up: the server entity, reaching the Group Key Managers (each gateway
    /// node's own, known by its KMC credential) through <paramref name="keyManagerProxy"/>.
    /// </summary>
    public static async Task<IActorRef> StartServerNodeAsync(ActorSystem system, ServerSecrets secrets, CpnsSettings settings,
        IActorRef keyManagerProxy)
    {
        await WhenUpAsync(system);
        var server = Deployment.StartServer(system, secrets, settings, KeyManagers(keyManagerProxy));
        StartStatus(system, null);
        return server;
    }

    /// <summary>A gateway node, once Up: it hosts Group Key Managers in <paramref name="keyManagerRegion"/>, and PN GWs.</summary>
    public static async Task StartGatewayNodeAsync(ActorSystem system, IActorRef keyManagerRegion)
    {
        await WhenUpAsync(system);
        StartStatus(system, keyManagerRegion);
    }

    /// <summary>The Group Key Managers behind a shard region (or its proxy), as the server's CSKMF reaches them.</summary>
    public static KeyManagerRegion KeyManagers(IActorRef region) =>
        new(region, (groupId, message) => new ShardingEnvelope(groupId, message));

    /// <summary>A gateway node's Group Key Manager for a group, with this node's own secrets (none of the server's).</summary>
    public static Func<string, Props> KeyManagerProps(KeyManagerSecrets secrets, CpnsSettings settings) =>
        groupId => GroupKeyManager.Props(groupId, secrets, settings);

    public static IMessageExtractor KeyManagerExtractor(CpnsSettings settings) =>
        new GroupKeyManagerExtractor(settings.Cluster.KeyManagerShards);

    /// <summary>
    /// The Group Key Managers' shard region started in an actor system made by hand (the in-process cluster tests); a
    /// <c>cpns gateway</c> process starts the same region through Akka.Hosting (<c>WithShardRegion</c>).
    /// </summary>
    public static IActorRef StartKeyManagerRegion(ActorSystem system, KeyManagerSecrets secrets, CpnsSettings settings) =>
        ClusterSharding.Get(system).Start(GroupKeyManager.TypeName, KeyManagerProps(secrets, settings),
            ClusterShardingSettings.Create(system).WithRole(GatewayRole), KeyManagerExtractor(settings));

    /// <summary>The server node's way to the Group Key Managers, which run on gateway nodes only (by hand, as above).</summary>
    public static IActorRef StartKeyManagerProxy(ActorSystem system, CpnsSettings settings) =>
        ClusterSharding.Get(system).StartProxy(GroupKeyManager.TypeName, GatewayRole, KeyManagerExtractor(settings));

    public static IActorRef StartStatus(ActorSystem system, IActorRef? localKeyManagers) =>
        system.ActorOf(ClusterStatusActor.Props(localKeyManagers), StatusActorName);

    /// <summary>The server entity's registry on the cluster's server node, once there is one.</summary>
    public static async Task<IActorRef> FindServerRegistryAsync(ActorSystem system, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var server = Cluster.Get(system).State.Members
                .FirstOrDefault(m => m.Status == MemberStatus.Up && m.HasRole(ServerRole));
            if (server is not null)
            {
                try
                {
                    return await system.ActorSelection(new RootActorPath(server.Address) / "user" / Deployment.ServerActorName / "registry")
                        .ResolveOne(CpnsSettings.From(system).Cluster.ResolveTimeout);
                }
                catch (ActorNotFoundException)
                {
                    // the node is up, its server entity not yet
                }
            }

            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no server node with a running server entity joined within {timeout}");
            await Task.Delay(200);
        }
    }
}
