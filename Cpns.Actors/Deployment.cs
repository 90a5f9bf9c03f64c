using Akka.Actor;
using Cpns.Actors.Gateway;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors;

/// <summary>Starts the enabler's entities in an actor system, under the names ARCHITECTURE.md §1 gives them.</summary>
public static class Deployment
{
    public const string ServerActorName = "server";

    /// <param name="keyManagers">The distributed topology: the Group Key Managers' shard region (see <see cref="Distributed.ClusterNodes"/>).</param>
    public static IActorRef StartServer(ActorSystem system, ServerSecrets secrets, CpnsSettings settings, IActorRef? keyManagers = null) =>
        system.ActorOf(CpnsServer.Props(secrets, settings, keyManagers), ServerActorName);

    public static Task<ServerEndpoints> EndpointsOf(IActorRef server, TimeSpan timeout) =>
        server.Ask<ServerEndpoints>(GetServerEndpoints.Instance, timeout);

    public static IActorRef StartGateway(ActorSystem system, EntityIdentity identity, TrustAnchor trustAnchor,
        IActorRef serverRegistry, CpnsSettings settings, DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0) =>
        system.ActorOf(PnGateway.Props(identity, trustAnchor, serverRegistry, settings, capabilities, lifetimeSeconds),
            PnGateway.ActorName(identity.DeviceId));

    /// <summary>Starts a PNE that registers with the PN GW entity <paramref name="gateway"/>.</summary>
    public static IActorRef StartPne(ActorSystem system, EntityIdentity identity, TrustAnchor trustAnchor, IActorRef gateway,
        CpnsSettings settings, DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0) =>
        system.ActorOf(PneEntity.Props(identity, trustAnchor, gateway, settings, capabilities, lifetimeSeconds),
            PneEntity.ActorName(identity.DeviceId));
}
