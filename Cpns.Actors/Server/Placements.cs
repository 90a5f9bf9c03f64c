using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// A server function's copy of where entities are (fed by the registry's placement messages): which PN GW each PNE is
/// behind, how each PN GW is reached and what PN security level it holds. An entity that left (expired, revoked) is no
/// longer placed, but where it was is kept, so that what it is owed (a removal notice) still reaches its PN GW; a
/// revoked one is refused by the function's guard as revoked, one that expired is forgotten. Owned by one actor.
/// </summary>
public sealed class Placements
{
    private readonly Dictionary<string, GatewayPlaced> _gateways = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _gatewayOfPne = new(StringComparer.Ordinal);
    private readonly HashSet<string> _departed = new(StringComparer.Ordinal);

    public IEnumerable<string> GatewayIds => _gateways.Keys.Where(id => !_departed.Contains(id));

    public bool IsGateway(string deviceId) => _gateways.ContainsKey(deviceId) && !_departed.Contains(deviceId);

    /// <summary>A PN GW that is placed now.</summary>
    public GatewayPlaced? Gateway(string gatewayId) => IsGateway(gatewayId) ? _gateways[gatewayId] : null;

    /// <summary>A PN GW that is placed now or was before it left.</summary>
    public GatewayPlaced? KnownGateway(string gatewayId) => _gateways.GetValueOrDefault(gatewayId);

    /// <summary>The PN security level a PN GW holds now (none for one that is not placed).</summary>
    public SecurityLevel LevelOf(string gatewayId) => Gateway(gatewayId)?.PnSecurityLevel ?? SecurityLevel.None;

    /// <summary>The PN GW a placed entity is reached through (a PN GW itself), while both are placed.</summary>
    public string? GatewayOf(string deviceId) =>
        _departed.Contains(deviceId) || LastGatewayOf(deviceId) is not { } gateway || _departed.Contains(gateway) ? null : gateway;

    /// <summary>The PN GW an entity is or was last reached through, whether or not either has left since.</summary>
    public string? LastGatewayOf(string deviceId) =>
        _gateways.ContainsKey(deviceId) ? deviceId
        : _gatewayOfPne.TryGetValue(deviceId, out var gateway) && _gateways.ContainsKey(gateway) ? gateway
        : null;

    public bool HasLeft(string deviceId) => _departed.Contains(deviceId);

    public IEnumerable<string> PnesOf(string gatewayId) =>
        _gatewayOfPne.Where(kv => kv.Value == gatewayId && !_departed.Contains(kv.Key)).Select(kv => kv.Key);

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
                {
                    if (removed.Revoked)
                        guard.Revoke(id);
                    else
                        guard.Forget(id);
                }

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
                _departed.Remove(placed.GatewayId);
                return true;
            case PnesPlaced placed:
                foreach (var pne in placed.Pnes)
                {
                    _gatewayOfPne[pne.DeviceId] = placed.GatewayId;
                    _departed.Remove(pne.DeviceId);
                }

                return true;
            case EntitiesRemoved removed:
                _departed.UnionWith(removed.DeviceIds);
                return true;
            default:
                return false;
        }
    }
}
