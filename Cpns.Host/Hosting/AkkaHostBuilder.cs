using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Configuration;
using Akka.Hosting;
using Cpns.Actors;
using Cpns.Actors.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cpns.Host.Hosting;

public static class AkkaBuilderExtensions
{
    /// <summary>The whole configuration of a `cpns` process, replacing Akka's own defaults where it says so.</summary>
    public static AkkaConfigurationBuilder WithCpnsConfiguration(this AkkaConfigurationBuilder builder, Config config) =>
        builder.AddHocon(config, HoconAddMode.Prepend);

    /// <summary>A gateway node's shard region of Group Key Managers, with this node's own secrets; in the registry as <see cref="GroupKeyManagers"/>.</summary>
    public static AkkaConfigurationBuilder WithGroupKeyManagers(this AkkaConfigurationBuilder builder, KeyManagerSecrets secrets,
        CpnsSettings settings) =>
        builder.WithShardRegion<GroupKeyManagers>(GroupKeyManager.TypeName, ClusterNodes.KeyManagerProps(secrets, settings),
            ClusterNodes.KeyManagerExtractor(settings), new ShardOptions { Role = ClusterNodes.GatewayRole });

    /// <summary>A server node's proxy to the Group Key Managers on the gateway nodes; in the registry as <see cref="GroupKeyManagers"/>.</summary>
    public static AkkaConfigurationBuilder WithGroupKeyManagerProxy(this AkkaConfigurationBuilder builder, CpnsSettings settings) =>
        builder.WithShardRegionProxy<GroupKeyManagers>(GroupKeyManager.TypeName, ClusterNodes.GatewayRole,
            ClusterNodes.KeyManagerExtractor(settings));
}

/// <summary>The actor registry's key of a node's Group Key Managers (the region on a gateway node, the proxy on a server node).</summary>
public sealed class GroupKeyManagers;

/// <summary>Runs an actor system as a Microsoft.Extensions.Hosting service (Akka.Hosting), the way every `cpns` command does.</summary>
public static class AkkaHostBuilder
{
    public const string SystemName = "cpns";

    public static IHost Build(Config config, Action<AkkaConfigurationBuilder>? configure = null) => Build(config, null, configure);

    /// <summary>A host whose actor system also gets <paramref name="transport"/>'s mutual TLS (cluster nodes, `cpns status`).</summary>
    public static IHost Build(Config config, NodeTransport? transport, Action<AkkaConfigurationBuilder>? configure = null)
    {
        if (transport is not null)
            config = NodeTransport.Hocon.WithFallback(config);
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(
            new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddAkka(SystemName, akka =>
        {
            akka.WithCpnsConfiguration(config);
            if (transport is not null)
                akka.AddSetup(transport.SslSetup());
            configure?.Invoke(akka);
        });
        return builder.Build();
    }

    public static ActorSystem ActorSystemOf(IHost host) => host.Services.GetRequiredService<ActorSystem>();

    /// <summary>An actor the host started and registered under <typeparamref name="TKey"/> (Akka.Hosting's <c>IRequiredActor</c>).</summary>
    public static Task<IActorRef> RequiredActorAsync<TKey>(IHost host, CancellationToken cancellationToken) =>
        host.Services.GetRequiredService<IRequiredActor<TKey>>().GetAsync(cancellationToken);
}
