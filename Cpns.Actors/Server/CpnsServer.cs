using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server entity (<c>server</c>): parent of <c>kmc</c>, <c>cskmf</c> (with <c>osg</c>), <c>smf</c> and
/// <c>registry</c>. Its children fail independently; a crashed function restarts from its journal.
/// </summary>
public sealed class CpnsServer : UntypedActor
{
    public CpnsServer(ServerSecrets secrets, CpnsSettings settings)
    {
        var kmc = Context.ActorOf(Kmc.Props(secrets.Kek), "kmc");
        var cskmf = Context.ActorOf(ServerCskmf.Props(secrets.Identity, secrets.Kek, kmc, settings), "cskmf");
        var smf = Context.ActorOf(ServerSmf.Props(cskmf, settings), "smf");
        var identity = secrets.Identity;
        Registry = Context.ActorOf(
            Server.Registry.Props(registry => new ServerEndpoints(identity.DeviceId, identity.PublicKeys, registry, smf, cskmf),
                smf, settings),
            "registry");
        Endpoints = new ServerEndpoints(identity.DeviceId, identity.PublicKeys, Registry, smf, cskmf);
    }

    private IActorRef Registry { get; }

    private ServerEndpoints Endpoints { get; }

    public static Props Props(ServerSecrets secrets, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new CpnsServer(secrets, settings));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GetServerEndpoints:
                Sender.Tell(Endpoints);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
