using Akka.Actor;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW entity (<c>gateway-{id}</c>): parent of <c>cskmf</c> (with <c>seca</c>), <c>smf</c>, <c>relay</c>,
/// <c>directory-cache</c>, <c>content</c> and <c>connections</c>, and for a BOTH device <c>pne</c>, its own PNE role.
/// Its PNEs talk to it through this actor, which hands their envelopes to <c>connections</c>.
/// </summary>
public sealed class PnGateway : UntypedActor
{
    private readonly IActorRef _connections;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly IActorRef _relay;
    private readonly IActorRef _content;
    private readonly IActorRef? _ownPne;
    private readonly string _gatewayId;

    public PnGateway(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef serverRegistry, DeviceCapabilities capabilities,
        int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken)
    {
        _cskmf = Context.ActorOf(GatewayCskmf.Props(identity, settings), "cskmf");
        _smf = Context.ActorOf(GatewaySmf.Props(identity, _cskmf, settings), "smf");
        _relay = Context.ActorOf(Relay.Props(identity, capabilities, settings), "relay");
        var directory = Context.ActorOf(DirectoryCache.Props(identity, settings), "directory-cache");
        _gatewayId = identity.DeviceId;
        _content = Context.ActorOf(ContentRelay.Props(identity, settings), "content");
        _ownPne = identity.Kind == EntityKind.Both ? Context.ActorOf(OwnPne.Props(identity, _cskmf, _content, settings), "pne") : null;
        _content.Tell(new ContentRelay.OwnPneIs(_ownPne));
        _connections = Context.ActorOf(
            Connections.Props(identity, trustAnchor, serverRegistry, new GatewayFunctions(_smf, _cskmf, _relay, directory, _content, _ownPne),
                capabilities, lifetimeSeconds, settings, enrolmentToken),
            "connections");
    }

    public static string ActorName(string gatewayId) => $"gateway-{gatewayId}";

    /// <param name="enrolmentToken">The one-time token the operator provisioned for this PN GW (its first registration needs it).</param>
    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef serverRegistry, CpnsSettings settings,
        DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0, string? enrolmentToken = null) =>
        Akka.Actor.Props.Create(() => new PnGateway(identity, trustAnchor, serverRegistry,
            capabilities ?? DeviceCapabilities.Gateway(), lifetimeSeconds, settings, enrolmentToken));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            // What the PN GW's own applications ask of it comes through its node-local API (LocalRequest).
            case ISecureWire or GetRegistrationStatus or DiscoverGateways or UplinkSeen or GetReachability or SetGatewayPolicy
                or TakeOverPn or UpdateCapabilities or LocalRequest { Request: DmAlert } or DmAlert or GetSecurityCounters
                or PublishService or WithdrawService or SearchServices:
                _connections.Forward(message);
                break;
            // The device's applications as a PNE: only a BOTH device is one.
            case LocalRequest { Request: PublishService or WithdrawService or SearchServices } or SendContent or GetReceivedContent:
                if (_ownPne is null)
                    Sender.Tell(OwnPne.NotAPne(_gatewayId, message));
                else
                    _ownPne.Forward(message);
                break;
            case GetLocalGroups:
                _smf.Forward(message);
                break;
            case GetKeyState or ExportGroupKey or GetKeyAcks or EncryptContent or DecryptContent:
                _cskmf.Forward(message);
                break;
            case GetRelayStats:
                _relay.Forward(message);
                break;
            case GetContentStats:
                _content.Forward(message);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
