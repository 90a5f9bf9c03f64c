using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
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

    public static IHost Build(Config config, Action<AkkaConfigurationBuilder>? configure = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(
            new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddAkka(SystemName, akka =>
        {
            akka.WithCpnsConfiguration(config);
            configure?.Invoke(akka);
        });
        return builder.Build();
    }

    public static ActorSystem ActorSystemOf(IHost host) => host.Services.GetRequiredService<ActorSystem>();
}
