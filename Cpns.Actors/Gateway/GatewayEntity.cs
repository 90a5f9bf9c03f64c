using Cpns.Actors.Common;
using Akka.Actor;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>The props of the PNE a PN GW (<paramref name="gateway"/>) runs for a device without CPNS features.</summary>
public delegate Props RepresentativeFactory(AdoptLegacyDevice adopt, IActorRef gateway);

/// <summary>
/// A PN GW entity (<c>gateway-{id}</c>): parent of <c>cskmf</c> (with <c>seca</c>), <c>smf</c>, <c>relay</c>,
/// <c>directory-cache</c>, <c>content</c> and <c>connections</c>, and for a BOTH device <c>pne</c>, its own PNE role.
/// Its PNEs talk to it through this actor, which hands their envelopes to <c>connections</c>.
/// </summary>
public sealed class GatewayEntity : UntypedActor
{
    private readonly IActorRef _connections;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly IActorRef _relay;
    private readonly IActorRef _content;
    private readonly IActorRef? _ownPne;
    private readonly string _gatewayId;
    private readonly RepresentativeFactory? _representatives;
    /// <summary>The devices without CPNS features this PN GW represents, by id: the device and the PNE it runs for it.</summary>
    private readonly Dictionary<string, (IActorRef Device, IActorRef Representative)> _legacy = new(StringComparer.Ordinal);

    public GatewayEntity(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef serverRegistry, DeviceCapabilities capabilities,
        int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken, RepresentativeFactory? representatives)
    {
        DispatcherLag.Of(Context.System); // the node's lag probe runs from its first function on (design §9)
        _cskmf = Context.ActorOf(GatewayCskmf.Props(identity, settings), "cskmf");
        _smf = Context.ActorOf(GatewaySmf.Props(identity, _cskmf, settings), "smf");
        _relay = Context.ActorOf(Relay.Props(identity, capabilities, settings), "relay");
        var directory = Context.ActorOf(DirectoryCache.Props(identity, settings), "directory-cache");
        _gatewayId = identity.DeviceId;
        _representatives = representatives;
        _content = Context.ActorOf(ContentRelay.Props(identity, settings), "content");
        _ownPne = identity.Kind == EntityKind.Both ? Context.ActorOf(OwnPne.Props(identity, _cskmf, _content, settings), "pne") : null;
        _connections = Context.ActorOf(
            Connections.Props(identity, trustAnchor, serverRegistry, new GatewayFunctions(_smf, _cskmf, _relay, directory, _content, _ownPne),
                capabilities, lifetimeSeconds, settings, enrolmentToken),
            "connections");
    }

    public static string ActorName(string gatewayId) => $"gateway-{gatewayId}";

    /// <param name="enrolmentToken">The one-time token the operator provisioned for this PN GW (its first registration needs it).</param>
    /// <param name="representatives">How this PN GW makes the PNE it runs for a device without CPNS features (given by
    /// whoever deploys it, which knows the PNE entity); without it the PN GW represents no such device.</param>
    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef serverRegistry, CpnsSettings settings,
        DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0, string? enrolmentToken = null,
        RepresentativeFactory? representatives = null) =>
        Akka.Actor.Props.Create(typeof(GatewayEntity), identity, trustAnchor, serverRegistry,
            capabilities ?? DeviceCapabilities.Gateway(), lifetimeSeconds, settings, enrolmentToken, representatives);

    private void Adopt(AdoptLegacyDevice adopt)
    {
        var id = adopt.Identity.DeviceId;
        var problem = adopt.Identity.Kind != EntityKind.Pne ? $"{id} is a {adopt.Identity.Kind}: a represented device is a PNE"
            : !DeviceIds.IsValid(id) ? $"'{id}' is not a device id"
            : _legacy.ContainsKey(id) ? $"{id} is already represented by {_gatewayId}"
            : _representatives is null ? $"{_gatewayId} represents no devices without CPNS features"
            : null;
        if (problem is not null)
        {
            Sender.Tell(new LegacyDeviceRefused(id, problem));
            return;
        }

        var representative = Context.ActorOf(_representatives!(adopt, Self), $"legacy-{id}");
        _legacy[id] = (adopt.Device, representative);
        Context.Watch(adopt.Device);
        Sender.Tell(new LegacyDeviceAdopted(id, representative));
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SiblingsWanted when Sender.Equals(_cskmf):
                Sender.Tell(new SiblingIs("smf", _smf));
                break;
            // What the PN GW's own applications ask of it comes through its node-local API (LocalRequest).
            case ISecureWire or GetRegistrationStatus or DiscoverGateways or UplinkSeen or GetReachability or SetGatewayPolicy
                or TakeOverPn or UpdateCapabilities or LocalRequest { Request: DmAlert } or DmAlert or GetSecurityCounters
                or PublishService or WithdrawService or SearchServices:
                _connections.Forward(message);
                break;
            // The device's applications as a PNE: only a BOTH device is one.
            case ContentForPne when Sender.Equals(_content) && _ownPne is not null:
                _ownPne.Forward(message);
                break;
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
            case AdoptLegacyDevice adopt:
                Adopt(adopt);
                break;
            case GetLegacyDevices:
                Sender.Tell(new LegacyDevices(_gatewayId, _legacy.Keys.Order(StringComparer.Ordinal).ToList()));
                break;
            case Terminated gone when _legacy.FirstOrDefault(kv => kv.Value.Device.Equals(gone.ActorRef)) is { Key: not null } left:
                // The device left the PN: its PNE deregisters, then stops.
                left.Value.Representative.Tell(new DeregisterDevice(left.Key));
                break;
            case RegistrationEnded ended when _legacy.Remove(ended.DeviceId, out var represented) && Sender.Equals(represented.Representative):
                Context.Stop(represented.Representative);
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
