using System.Security.Cryptography;
using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's registration with the server (CPNS-2/3/4): the hellos it sent, the server it registered with, its lease,
/// the server's last sign of life, and what it asked of the server on its own and its PNEs' behalf (lease refreshes,
/// deregistrations, DM alerts, a change of capabilities) until the answer comes.
/// </summary>
public sealed class GatewayRegistration
{
    private const int HellosRemembered = 4;

    private readonly List<Octets> _helloNonces = new();
    private readonly Dictionary<string, (int LifetimeSeconds, IActorRef ReplyTo)> _pendingRefreshes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _refreshesInFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _pendingDeregistrations = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (IActorRef Asker, long TheirRequestId)> _dmAlerts = new();
    private long _nextAlertId;
    private string? _bootId;

    /// <summary>This PN GW's credential, as the server last issued it (durable).</summary>
    public Credential? Credential { get; set; }

    public Credential? ServerCredential { get; private set; }

    public ServerEndpoints? Server { get; private set; }

    public string? ServerId { get; private set; }

    public string? RegistrationId { get; private set; }

    public int Attempts { get; private set; }

    public int GrantedLifetimeSeconds { get; set; }

    public long LastHeardMs { get; set; }

    public bool IsRegistered => RegistrationId is not null;

    /// <summary>Registered, with the credential the server issued: this PN GW may take PNEs in.</summary>
    public bool CanAdmit => RegistrationId is not null && Credential is not null;

    /// <summary>Who asked for this PN GW's capabilities change, until the server answers.</summary>
    public IActorRef? CapabilitiesAsker { get; set; }

    /// <summary>A nonce for a new hello; a slow server may answer an earlier hello after another, so the last few are kept.</summary>
    public Octets NextHello()
    {
        Attempts++;
        var nonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _helloNonces.Add(nonce);
        if (_helloNonces.Count > HellosRemembered)
            _helloNonces.RemoveAt(0);
        return nonce;
    }

    public bool AnswersOurHello(AuthChallenge challenge, string ownId) =>
        _helloNonces.Contains(challenge.ClientNonce) && challenge.DeviceId == ownId;

    /// <summary>A busy answer is not a failed attempt: the server's wait replaces this attempt's backoff.</summary>
    public void AttemptNotCounted() => Attempts = Math.Max(0, Attempts - 1);

    public void Challenged(AuthChallenge challenge)
    {
        ServerId = challenge.VerifierId;
        ServerCredential = challenge.VerifierCredential;
    }

    public void Registered(GatewayRegistered registered, long nowMs)
    {
        _helloNonces.Clear();
        Attempts = 0;
        RegistrationId = registered.RegistrationId;
        GrantedLifetimeSeconds = registered.LifetimeSeconds;
        Server = registered.Server;
        _bootId = registered.BootId;
        LastHeardMs = nowMs;
    }

    /// <summary>The server restarted (a heartbeat answered from another boot).</summary>
    public bool RestartedSince(HeartbeatAck ack) => _bootId is not null && ack.BootId != _bootId;

    public bool Silent(long nowMs, CpnsSettings settings) =>
        nowMs - LastHeardMs > settings.Connections.MissedHeartbeats * settings.Connections.HeartbeatInterval.TotalMilliseconds;

    public void Lost()
    {
        RegistrationId = null;
        Attempts = 0;
    }

    public void RefreshWanted(string deviceId, int lifetimeSeconds, IActorRef replyTo) =>
        _pendingRefreshes[deviceId] = (lifetimeSeconds, replyTo);

    /// <summary>Every refresh asked since the last batch, now in flight.</summary>
    public List<LeaseRefresh> TakeRefreshes()
    {
        var refreshes = _pendingRefreshes.Select(kv => new LeaseRefresh(kv.Key, kv.Value.LifetimeSeconds)).ToList();
        foreach (var (id, pending) in _pendingRefreshes)
            _refreshesInFlight[id] = pending.ReplyTo;
        _pendingRefreshes.Clear();
        return refreshes;
    }

    public bool RefreshAnswered(string deviceId, out IActorRef replyTo) => _refreshesInFlight.Remove(deviceId, out replyTo!);

    public void DeregistrationAsked(string deviceId, IActorRef asker) => _pendingDeregistrations[deviceId] = asker;

    public IActorRef? DeregistrationAnswered(string deviceId) => _pendingDeregistrations.Remove(deviceId, out var asker) ? asker : null;

    /// <summary>An id for this PN GW's own alert, under which the server's answer finds the asker.</summary>
    public long AlertAsked(IActorRef asker, long theirRequestId)
    {
        var alertId = ++_nextAlertId;
        _dmAlerts[alertId] = (asker, theirRequestId);
        return alertId;
    }

    public bool AlertAnswered(long alertId, out (IActorRef Asker, long TheirRequestId) alerted) => _dmAlerts.Remove(alertId, out alerted);
}
