using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Server;

/// <summary>
/// The CPNS Server entity (<c>server</c>): parent of <c>kmc</c>, <c>cskmf</c> (with <c>osg</c>), <c>smf</c> and
/// <c>registry</c>. Its children fail independently; a crashed function restarts from its journal.
/// </summary>
public sealed class CpnsServer : UntypedActor
{
    private readonly ServerEndpoints _endpoints;

    public CpnsServer(ServerSecrets secrets, CpnsSettings settings)
    {
        var identity = secrets.Identity;
        var serverCredential = secrets.Authority.Issue(identity.DeviceId, EntityKind.Server, identity.PublicKeys,
            Context.System.Scheduler.Now.AddMinutes(-5), settings.CredentialValidity);
        var kmc = Context.ActorOf(Kmc.Props(secrets.Kek, secrets.Authority, settings), "kmc");
        var cskmf = Context.ActorOf(ServerCskmf.Props(identity, secrets.Kek, kmc, settings), "cskmf");
        var smf = Context.ActorOf(ServerSmf.Props(identity, cskmf, settings), "smf");
        var registry = Context.ActorOf(
            Registry.Props(r => new ServerEndpoints(identity.DeviceId, identity.PublicKeys, r, smf, cskmf), smf, cskmf, kmc,
                identity, serverCredential, secrets.TrustAnchor, settings),
            "registry");
        _endpoints = new ServerEndpoints(identity.DeviceId, identity.PublicKeys, registry, smf, cskmf);
    }

    public static Props Props(ServerSecrets secrets, CpnsSettings settings) =>
        Akka.Actor.Props.Create<CpnsServer>(secrets, settings);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GetServerEndpoints:
                Sender.Tell(_endpoints);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
