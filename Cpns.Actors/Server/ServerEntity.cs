using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server entity (<c>server</c>): parent of <c>kmc</c>, <c>cskmf</c> (with <c>osg</c>), <c>smf</c>,
/// <c>registry</c>, <c>capabilities</c>, <c>status</c>, <c>directory</c>, <c>dm</c>, <c>delivery</c>, <c>usage</c> and
/// <c>charging</c>. Its children fail independently; a crashed function restarts from its journal.
/// </summary>
public sealed class ServerEntity : UntypedActor
{
    private readonly ServerEndpoints _endpoints;
    private readonly IActorRef _charging;
    private readonly IActorRef _usage;
    private readonly IActorRef _cskmf;
    private readonly IActorRef _smf;

    /// <param name="keyManagers">The Group Key Managers' shard region in the distributed topology; null when centralized.</param>
    public ServerEntity(ServerSecrets secrets, CpnsSettings settings, KeyManagerRegion? keyManagers)
    {
        DispatcherLag.Of(Context.System); // the node's lag probe runs from its first function on (design §9)
        var identity = secrets.Identity;
        var serverCredential = secrets.Authority.Issue(identity.DeviceId, EntityKind.Server, identity.PublicKeys,
            Context.System.Scheduler.Now.AddMinutes(-5), settings.Security.CredentialValidity);
        var kmc = Function(ServerKmc.Props(secrets.Kek, secrets.Authority, settings), "kmc");
        var cskmf = Function(ServerCskmf.Props(identity, secrets.Kek, kmc, settings, keyManagers is null
            ? null
            : keyManagers with { Verifier = secrets.Authority.Verifier() }), "cskmf");
        var smf = Function(ServerSmf.Props(identity, cskmf, settings), "smf");
        (_cskmf, _smf) = (cskmf, smf);
        var capabilities = Function(ServerCapabilities.Props(identity, settings), "capabilities");
        var directory = Function(ServerDirectory.Props(identity, smf, capabilities, settings), "directory");
        var status = Function(ServerStatus.Props(identity, smf, directory, settings), "status");
        var dm = Function(ServerDm.Props(identity, settings), "dm");
        _charging = Function(ServerCharging.Props(settings), "charging");
        var usage = _usage = Function(ServerUsage.Props(identity, _charging, settings), "usage");
        var delivery = Function(ServerDelivery.Props(identity, smf, cskmf, usage, settings), "delivery");
        var registry = Function(
            ServerRegistry.Props(
                r => new ServerEndpoints(identity.DeviceId, identity.PublicKeys, r, smf, cskmf, capabilities, status, dm, directory,
                    delivery, usage) { KeyManagers = keyManagers is not null },
                // The CSKMF first: it knows a PN's security level before the SMF can ask it for a key that depends on it.
                [cskmf, smf, capabilities, status, dm, directory, delivery, usage], kmc, identity, serverCredential,
                secrets.TrustAnchor, settings),
            "registry");
        _endpoints = new ServerEndpoints(identity.DeviceId, identity.PublicKeys, registry, smf, cskmf, capabilities, status, dm,
            directory, delivery, usage) { KeyManagers = keyManagers is not null };
    }

    /// <summary>
    /// The server's functions each serve the whole network: on <c>cpns.network-dispatcher</c> they work through many
    /// messages a turn, where on the default dispatcher they would get a PNE's share — in a simulation, one turn in as many
    /// as there are busy PNEs, however little work each of those has.
    /// </summary>
    public const string Dispatcher = "cpns.network-dispatcher";

    private IActorRef Function(Props props, string name) =>
        Context.ActorOf(props.WithDispatcher(Dispatcher).WithMailbox(StampedDequeMailbox.NetworkId), name);

    public static Props Props(ServerSecrets secrets, CpnsSettings settings, KeyManagerRegion? keyManagers = null) =>
        Akka.Actor.Props.Create(typeof(ServerEntity), secrets, settings, keyManagers);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GetServerEndpoints:
                Sender.Tell(_endpoints);
                break;
            case GetChargingFunction:
                Sender.Tell(new ChargingFunction(_charging));
                break;
            case SiblingsWanted when Sender.Equals(_cskmf):
                Sender.Tell(new SiblingIs("smf", _smf));
                break;
            case ReplayUsage replay when Sender.Equals(_charging):
                _usage.Forward(replay);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
