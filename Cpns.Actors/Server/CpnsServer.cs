using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server entity (<c>server</c>): parent of <c>kmc</c>, <c>cskmf</c> (with <c>osg</c>), <c>smf</c>,
/// <c>registry</c>, <c>capabilities</c>, <c>status</c>, <c>directory</c>, <c>dm</c>, <c>delivery</c>, <c>usage</c> and
/// <c>charging</c>. Its children fail independently; a crashed function restarts from its journal.
/// </summary>
public sealed class CpnsServer : UntypedActor
{
    private readonly ServerEndpoints _endpoints;
    private readonly IActorRef _charging;
    private readonly IActorRef _usage;

    /// <param name="keyManagers">The Group Key Managers' shard region in the distributed topology; null when centralized.</param>
    public CpnsServer(ServerSecrets secrets, CpnsSettings settings, KeyManagerRegion? keyManagers)
    {
        var identity = secrets.Identity;
        var serverCredential = secrets.Authority.Issue(identity.DeviceId, EntityKind.Server, identity.PublicKeys,
            Context.System.Scheduler.Now.AddMinutes(-5), settings.Security.CredentialValidity);
        var kmc = Context.ActorOf(Kmc.Props(secrets.Kek, secrets.Authority, settings), "kmc");
        var cskmf = Context.ActorOf(ServerCskmf.Props(identity, secrets.Kek, kmc, settings, keyManagers is null
            ? null
            : keyManagers with { Verifier = secrets.Authority.Verifier() }), "cskmf");
        var smf = Context.ActorOf(ServerSmf.Props(identity, cskmf, settings), "smf");
        var capabilities = Context.ActorOf(ServerCapabilities.Props(identity, settings), "capabilities");
        var status = Context.ActorOf(ServerStatus.Props(identity, settings), "status");
        var dm = Context.ActorOf(ServerDm.Props(identity, settings), "dm");
        var directory = Context.ActorOf(ServerDirectory.Props(identity, smf, capabilities, settings), "directory");
        _charging = Context.ActorOf(ServerCharging.Props(settings), "charging");
        var usage = _usage = Context.ActorOf(ServerUsage.Props(identity, _charging, settings), "usage");
        var delivery = Context.ActorOf(ServerDelivery.Props(identity, smf, cskmf, usage, settings), "delivery");
        var registry = Context.ActorOf(
            Registry.Props(
                r => new ServerEndpoints(identity.DeviceId, identity.PublicKeys, r, smf, cskmf, capabilities, status, dm, directory,
                    delivery, usage) { KeyManagers = keyManagers is not null },
                // The CSKMF first: it knows a PN's security level before the SMF can ask it for a key that depends on it.
                [cskmf, smf, capabilities, status, dm, directory, delivery, usage], kmc, identity, serverCredential,
                secrets.TrustAnchor, settings),
            "registry");
        _endpoints = new ServerEndpoints(identity.DeviceId, identity.PublicKeys, registry, smf, cskmf, capabilities, status, dm,
            directory, delivery, usage) { KeyManagers = keyManagers is not null };
    }

    public static Props Props(ServerSecrets secrets, CpnsSettings settings, KeyManagerRegion? keyManagers = null) =>
        Akka.Actor.Props.Create(typeof(CpnsServer), secrets, settings, keyManagers);

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
            case ReplayUsage replay when Sender.Equals(_charging):
                _usage.Forward(replay);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
