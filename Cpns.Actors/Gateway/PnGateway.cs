using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW entity (<c>gateway-{id}</c>): parent of <c>cskmf</c> (with <c>seca</c>), <c>smf</c> and <c>connections</c>.
/// </summary>
public sealed class PnGateway : UntypedActor
{
    private readonly IActorRef _connections;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;

    public PnGateway(EntityIdentity identity, IActorRef serverRegistry, int lifetimeSeconds, CpnsSettings settings)
    {
        _cskmf = Context.ActorOf(GatewayCskmf.Props(identity, settings), "cskmf");
        _smf = Context.ActorOf(GatewaySmf.Props(identity.DeviceId, _cskmf), "smf");
        _connections = Context.ActorOf(
            Connections.Props(identity, serverRegistry, _smf, _cskmf, lifetimeSeconds, settings), "connections");
    }

    public static string ActorName(string gatewayId) => $"gateway-{gatewayId}";

    public static Props Props(EntityIdentity identity, IActorRef serverRegistry, CpnsSettings settings,
        int lifetimeSeconds = 0) =>
        Akka.Actor.Props.Create(() => new PnGateway(identity, serverRegistry, lifetimeSeconds, settings));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case RegisterPne or GetRegistrationStatus:
                _connections.Forward(message);
                break;
            case GetLocalGroups:
                _smf.Forward(message);
                break;
            case GetKeyState or ExportGroupKey:
                _cskmf.Forward(message);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
