using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
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
}

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
}
