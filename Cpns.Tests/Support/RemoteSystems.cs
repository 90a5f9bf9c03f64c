using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Cpns.Actors.Distributed;

namespace Cpns.Tests.Support;

/// <summary>Actor systems on a free 127.0.0.1 port: over the node transport's mutual TLS, or plain TCP without a certificate.</summary>
public static class RemoteSystems
{
    private static readonly Config Remote = ConfigurationFactory.ParseString("""
        akka.loglevel = INFO
        akka.stdout-loglevel = WARNING
        akka.actor.provider = remote
        akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
        """);

    public static ActorSystem Start(NodeTransport? transport, Config? below = null)
    {
        var config = Remote.WithFallback(below ?? Config.Empty);
        if (transport is null)
            return ActorSystem.Create("cpns", ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config)));
        return ActorSystem.Create("cpns", BootstrapSetup.Create().WithConfig(NodeTransport.Hocon.WithFallback(config)).And(transport.SslSetup()));
    }
}
