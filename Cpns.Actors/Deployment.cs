using Akka.Actor;
using Cpns.Actors.Gateway;
using Cpns.Actors.Pne;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors;

/// <summary>Starts the enabler's entities in an actor system, under the names design §1 gives them.</summary>
public static class Deployment
{
    public const string ServerActorName = "server";

    /// <param name="keyManagers">The distributed topology: the Group Key Managers' shard region (see <see cref="Distributed.ClusterNodes"/>).</param>
    public static IActorRef StartServer(ActorSystem system, ServerSecrets secrets, CpnsSettings settings, KeyManagerRegion? keyManagers = null) =>
        system.ActorOf(ServerEntity.Props(secrets, settings, keyManagers), ServerActorName);

    public static Task<ServerEndpoints> EndpointsOf(IActorRef server, TimeSpan timeout) =>
        server.Ask<ServerEndpoints>(GetServerEndpoints.Instance, timeout);

    public static async Task<IActorRef> ChargingOf(IActorRef server, TimeSpan timeout) =>
        (await server.Ask<ChargingFunction>(GetChargingFunction.Instance, timeout)).Charging;

    /// <param name="enrolmentToken">The operator's one-time token for a PN GW that has never registered (see <see cref="Enrolment"/>).</param>
    public static IActorRef StartGateway(ActorSystem system, EntityIdentity identity, TrustAnchor trustAnchor,
        IActorRef serverRegistry, CpnsSettings settings, DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0,
        string? enrolmentToken = null) =>
        system.ActorOf(GatewayEntity.Props(identity, trustAnchor, serverRegistry, settings, capabilities, lifetimeSeconds, enrolmentToken,
                (adopt, gateway) => PneEntity.Props(adopt.Identity, trustAnchor, gateway, settings,
                    DeviceCapabilities.Legacy(adopt.DeviceKind, adopt.Link), enrolmentToken: adopt.EnrolmentToken,
                    representedDevice: adopt.Device)),
            GatewayEntity.ActorName(identity.DeviceId));

    /// <summary>Starts a PNE that registers with the PN GW entity <paramref name="gateway"/>.</summary>
    public static IActorRef StartPne(ActorSystem system, EntityIdentity identity, TrustAnchor trustAnchor, IActorRef gateway,
        CpnsSettings settings, DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0, string? enrolmentToken = null,
        IReadOnlyList<IActorRef>? alsoInReach = null) =>
        system.ActorOf(PneEntity.Props(identity, trustAnchor, gateway, settings, capabilities, lifetimeSeconds, enrolmentToken,
            alsoInReach), PneEntity.ActorName(identity.DeviceId));

    /// <summary>
    /// The operator's side of enrolment for devices this process starts itself (a simulation, tests): a one-time token per
    /// device, provisioned at the server's registry. Returns the tokens by device id once the registry has them.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> ProvisionAsync(IActorRef registry,
        IEnumerable<(string DeviceId, EntityKind Kind)> devices, TimeSpan timeout)
    {
        var tokens = new Dictionary<string, string>(StringComparer.Ordinal);
        var provisions = new List<DeviceProvision>();
        foreach (var (deviceId, kind) in devices)
        {
            var (token, provision) = Enrolment.Provision(deviceId, kind, long.MaxValue);
            tokens[deviceId] = token;
            provisions.Add(provision);
        }

        var answer = await registry.Ask<DevicesProvisioned>(new ProvisionDevices(provisions), timeout);
        if (answer.Refused.Count > 0)
            throw new InvalidOperationException($"provisioning refused: {string.Join("; ", answer.Refused.Select(r => $"{r.DeviceId}: {r.Detail}"))}");
        return tokens;
    }
}
