using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW function's copy of what <c>connections</c> tells every function: the server it is registered with, the
/// PNEs attached to it and which of them can be reached — with the function's envelope guard trusting exactly those
/// signers. Owned by one actor.
/// </summary>
public sealed class PnView
{
    private readonly Dictionary<string, PneAttached> _pnes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unreachable = new(StringComparer.Ordinal);

    public ServerEndpoints? Server { get; private set; }

    public bool IsFromServer(string senderId) => senderId == Server?.ServerId;

    public PneAttached? Pne(string deviceId) => _pnes.GetValueOrDefault(deviceId);

    public bool IsAttached(string deviceId) => _pnes.ContainsKey(deviceId);

    public bool IsReachable(string deviceId) => !_unreachable.Contains(deviceId);

    /// <summary>Applies one of connections' messages; true if it was one.</summary>
    public bool Apply(object message, EnvelopeGuard guard)
    {
        switch (message)
        {
            case ServerAttached attached:
                Server = attached.Server;
                guard.Trust(attached.Server.ServerId, attached.Server.Keys.Signing);
                return true;
            case PneAttached attached:
                _pnes[attached.DeviceId] = attached;
                guard.Trust(attached.DeviceId, attached.Keys.Signing);
                return true;
            case PneDetached detached:
                _pnes.Remove(detached.DeviceId);
                _unreachable.Remove(detached.DeviceId);
                guard.Forget(detached.DeviceId);
                return true;
            case PneReachability reachability:
                if (reachability.Reachable)
                    _unreachable.Remove(reachability.DeviceId);
                else
                    _unreachable.Add(reachability.DeviceId);
                return true;
            default:
                return false;
        }
    }
}
