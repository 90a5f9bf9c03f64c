using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// A server function's copy of where entities are (fed by the registry's placement messages): which PN GW each
/// PNE is behind, and how each PN GW is reached. Owned by one actor.
/// </summary>
public sealed class Placements
{
    private readonly Dictionary<string, GatewayPlaced> _gateways = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _gatewayOfPne = new(StringComparer.Ordinal);

    public IEnumerable<string> GatewayIds => _gateways.Keys;

    public bool IsGateway(string deviceId) => _gateways.ContainsKey(deviceId);

    public GatewayPlaced? Gateway(string gatewayId) => _gateways.GetValueOrDefault(gatewayId);

    public string? GatewayOf(string deviceId) =>
        _gateways.ContainsKey(deviceId) ? deviceId
        : _gatewayOfPne.TryGetValue(deviceId, out var gateway) && _gateways.ContainsKey(gateway) ? gateway
        : null;

    public IEnumerable<string> PnesOf(string gatewayId) =>
        _gatewayOfPne.Where(kv => kv.Value == gatewayId).Select(kv => kv.Key);

    /// <summary>
    /// Applies a placement message and keeps <paramref name="guard"/> trusting exactly the placed entities' signing
    /// keys: the PN GWs always, the PNEs when <paramref name="trustPnes"/> (functions PNEs sign requests to); true if
    /// it was a placement message.
    /// </summary>
    public bool ApplyAndTrust(object message, EnvelopeGuard guard, bool trustPnes)
    {
        if (!Apply(message))
            return false;
        switch (message)
        {
            case GatewayPlaced placed:
                guard.Trust(placed.GatewayId, placed.Keys.Signing);
                break;
            case PnesPlaced placed when trustPnes:
                foreach (var pne in placed.Pnes)
                    guard.Trust(pne.DeviceId, pne.Keys.Signing);
                break;
            case EntitiesRemoved removed:
                foreach (var id in removed.DeviceIds)
                    guard.Forget(id);
                break;
        }

        return true;
    }

    /// <summary>Applies a placement message; true if it was one.</summary>
    public bool Apply(object message)
    {
        switch (message)
        {
            case GatewayPlaced placed:
                _gateways[placed.GatewayId] = placed;
                return true;
            case PnesPlaced placed:
                foreach (var pne in placed.Pnes)
                    _gatewayOfPne[pne.DeviceId] = placed.GatewayId;
                return true;
            case EntitiesRemoved removed:
                foreach (var id in removed.DeviceIds)
                {
                    _gateways.Remove(id);
                    _gatewayOfPne.Remove(id);
                }

                return true;
            default:
                return false;
        }
    }
}
