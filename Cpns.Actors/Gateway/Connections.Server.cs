using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>The PN GW ↔ server side of <c>connections</c> (CPNS-2/3/4).</summary>
public sealed partial class Connections
{
    private sealed record RetryRegistration : INoSerializationVerificationNeeded
    {
        public static readonly RetryRegistration Instance = new();
    }

    private sealed record RenewOwnLease : INoSerializationVerificationNeeded
    {
        public static readonly RenewOwnLease Instance = new();
    }

    private sealed record FlushRefreshes : INoSerializationVerificationNeeded
    {
        public static readonly FlushRefreshes Instance = new();
    }

    private sealed record CheckLinks : INoSerializationVerificationNeeded
    {
        public static readonly CheckLinks Instance = new();
    }

    private readonly List<Octets> _clientNonces = new();
    private readonly Dictionary<string, (int LifetimeSeconds, IActorRef ReplyTo)> _pendingRefreshes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _refreshesInFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _pendingDeregistrations = new(StringComparer.Ordinal);
    private Credential? _credential;
    private Credential? _serverCredential;
    private ServerEndpoints? _server;
    private string? _serverId;
    private readonly Dictionary<long, (IActorRef Asker, long TheirRequestId)> _dmAlerts = new();
    private long _nextAlertId;
    private string? _serverBootId;
    private long _lastServerAckMs;
    private string? _registrationId;
    private int _registrationAttempts;
    private int _grantedLifetime;

    private IActorRef? _capabilitiesAsker;

    /// <summary>
    /// This PN GW's own capabilities changed (a PN technology came or went): the relay answers with them from now on, and
    /// the server is told, since the PN's security level decides which keys may enter it. Unregistered, the registration
    /// carries them.
    /// </summary>
    private void UpdateOwnCapabilities(UpdateCapabilities update, IActorRef asker)
    {
        _capabilities = update.Capabilities;
        _functions.Relay.Tell(update);
        if (_server is null || _registrationId is null)
        {
            asker.Tell(new Status.Failure(new InvalidOperationException(
                $"{_identity.DeviceId} is not registered yet; its registration will carry the new capabilities")));
            return;
        }

        _capabilitiesAsker = asker;
        _link.Send(_server.Registry, new GatewayCapabilitiesChanged(_identity.DeviceId, update.Capabilities));
    }

    /// <summary>Device-initiated DM (seed §5.1.2) by the PN GW itself: its own alert, signed by it, to the server's DM.</summary>
    private void RaiseAlert(DmAlert alert, IActorRef asker)
    {
        if (_server is null || _registrationId is null)
        {
            asker.Tell(new DmAlertAnswer(_identity.DeviceId, 0, false, $"{_identity.DeviceId} is not registered yet", alert.RequestId));
            return;
        }

        var alertId = ++_nextAlertId;
        _dmAlerts[alertId] = (asker, alert.RequestId);
        _link.Send(_server.Dm, alert with { DeviceId = _identity.DeviceId, RequestId = alertId });
    }

    private void OnFromServer(object message, string senderId)
    {
        if (_serverId is not null && senderId == _serverId)
            _lastServerAckMs = NowMs; // anything authenticated from the server shows it is there
        switch (message)
        {
            case AuthChallenge challenge when senderId == challenge.VerifierId:
                OnServerChallenge(challenge);
                break;
            case GatewayRegistered registered:
                OnRegistered(registered);
                break;
            case RegistrationRejected { Error: RegistrationError.Busy } busy when busy.DeviceId == _identity.DeviceId && _registrationId is null:
                // Not a failed attempt: the server asked for a wait, which replaces this attempt's backoff.
                Log.Info("{0}: the server is busy ({1}); registering again in {2} ms", _identity.DeviceId, busy.Detail, busy.RetryAfterMs);
                _registrationAttempts = Math.Max(0, _registrationAttempts - 1);
                Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance,
                    Common.Backpressure.WaitFor(busy.RetryAfterMs));
                break;
            case RegistrationRejected rejected when rejected.DeviceId == _identity.DeviceId:
                Log.Warning("{0}: the server refused this PN GW: {1}{2} ({3})", _identity.DeviceId, rejected.Error,
                    rejected.Auth is null ? "" : "/" + rejected.Auth, rejected.Detail);
                break;
            case DmAlertAnswer answer when answer.DeviceId == _identity.DeviceId && _dmAlerts.Remove(answer.RequestId, out var alerted):
                alerted.Asker.Tell(answer with { RequestId = alerted.TheirRequestId });
                break;
            case GatewayCapabilitiesAccepted accepted when accepted.GatewayId == _identity.DeviceId:
                Log.Info("{0}: the server holds this PN to {1} security", _identity.DeviceId, accepted.PnSecurityLevel);
                _capabilitiesAsker?.Tell(accepted);
                _capabilitiesAsker = null;
                break;
            case HeartbeatAck ack:
                _lastServerAckMs = NowMs;
                if (_serverBootId is not null && ack.BootId != _serverBootId)
                    ServerLost("the server restarted");
                break;
            case PnesRegistered registered:
                OnPnesRegistered(registered);
                break;
            case MoveNonceIssued issued when senderId == _serverId:
                OnMoveNonce(issued);
                break;
            case CredentialRevoked revoked:
                OnRevoked(revoked);
                break;
            case RegistrationsRefreshed refreshed:
                OnRefreshed(refreshed);
                break;
            case RegistrationsEnded ended:
                OnRegistrationsEnded(ended);
                break;
            default:
                Log.Warning("{0}: unexpected {1} from the server", _identity.DeviceId, message.GetType().Name);
                break;
        }
    }

    private void Register()
    {
        _registrationAttempts++;
        // A slow server may answer an earlier hello after we sent another: any of the last few nonces is accepted.
        var nonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _clientNonces.Add(nonce);
        if (_clientNonces.Count > 4)
            _clientNonces.RemoveAt(0);
        _registry.Tell(_link.Seal(new AuthHello(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _credential, nonce,
            AuthTranscripts.GatewayContext)), Self);
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance,
            Settings.Registration.Backoff.Delay(_registrationAttempts + 1));
    }

    private void OnServerChallenge(AuthChallenge challenge)
    {
        if (!_clientNonces.Contains(challenge.ClientNonce) || challenge.DeviceId != _identity.DeviceId)
        {
            Log.Warning("{0}: a challenge that answers no hello of ours; ignored", _identity.DeviceId);
            return;
        }

        var serverKey = _link.Guard.LastSelfSignedKey!; // from its credential, checked while opening
        if (ChallengeClaimant.Answer(AuthTranscripts.GatewayContext, _identity, challenge, serverKey, _credential, _enrolmentToken) is not
            { } answer)
        {
            Log.Warning("{0}: the server's challenge signature does not verify; not registering with it", _identity.DeviceId);
            return;
        }

        if (_trustAnchor.PinProblem(challenge.VerifierId, serverKey) is { } notOurs)
        {
            Log.Warning("{0}: not registering with {1}: {2}", _identity.DeviceId, challenge.VerifierId, notOurs);
            return;
        }

        _link.Guard.Trust(challenge.VerifierId, serverKey);
        _serverId = challenge.VerifierId;
        _serverCredential = challenge.VerifierCredential;
        _registry.Tell(_link.Seal(new RegisterGateway(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _credential, answer.Proof,
            _capabilities, _lifetimeSeconds, Endpoints, answer.Enrolment)), Self);
    }

    private void OnRegistered(GatewayRegistered registered)
    {
        if (_credential == registered.Credential)
            Registered(registered);
        else
            Persist(new GatewayCredentialStored(registered.Credential), e =>
            {
                Apply(e);
                Registered(registered);
            });
    }

    private void Registered(GatewayRegistered registered)
    {
        Timers.Cancel(RetryRegistration.Instance);
        _clientNonces.Clear();
        _registrationAttempts = 0;
        _registrationId = registered.RegistrationId;
        _grantedLifetime = registered.LifetimeSeconds;
        _server = registered.Server;
        _serverBootId = registered.BootId;
        _lastServerAckMs = NowMs;
        ScheduleOwnRenewal();
        TellFunctions(new ServerAttached(registered.Server, _serverCredential!, _verifier));
        Context.System.EventStream.Publish(new EntityRegistered(_identity.DeviceId, _identity.Kind, registered.RegistrationId));
        foreach (var (hello, replyTo) in _helloBacklog)
            Challenge(hello, replyTo);
        _helloBacklog.Clear();
        RegisterPnAgain();
    }

    /// <summary>
    /// A heartbeat to the server each interval; no answer for the configured number of intervals means the server
    /// is gone, an answer from a new boot means it restarted — either way this PN GW registers again.
    /// </summary>
    private void CheckServerLink()
    {
        if (_registrationId is null || _server is null)
            return;
        if (NowMs - _lastServerAckMs > Settings.Connections.MissedHeartbeats * Settings.Connections.HeartbeatInterval.TotalMilliseconds)
        {
            ServerLost("the server stopped answering heartbeats");
            return;
        }

        _link.Send(_server.Registry, new Heartbeat(_identity.DeviceId, CapabilityHash.Of(_capabilities)));
    }

    /// <summary>Registers again after a random wait within the restart spread, then with exponential backoff.</summary>
    private void ServerLost(string why)
    {
        Log.Warning("{0}: {1}; registering again", _identity.DeviceId, why);
        _registrationId = null;
        _registeredPnes.Clear();
        _registrationAttempts = 0;
        Timers.Cancel(RenewOwnLease.Instance);
        var wait = Settings.Connections.RestartSpread * Random.Shared.NextDouble();
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, wait);
    }

    /// <summary>The lease is renewed at half its lifetime (and asked again at three quarters if no answer came).</summary>
    private void ScheduleOwnRenewal(double fraction = 0.5) =>
        Timers.StartSingleTimer(RenewOwnLease.Instance, RenewOwnLease.Instance, TimeSpan.FromSeconds(_grantedLifetime * fraction));

    private void RenewOwn()
    {
        if (_registrationId is null)
            return;
        _pendingRefreshes[_identity.DeviceId] = (_lifetimeSeconds, Self);
        FlushLeaseRefreshes();
        ScheduleOwnRenewal(0.25);
    }

    /// <summary>This PN GW's own renewal and its PNEs' that arrived meanwhile go to the server as one batch.</summary>
    private void FlushLeaseRefreshes()
    {
        Timers.Cancel(FlushRefreshes.Instance);
        if (_server is null || _pendingRefreshes.Count == 0)
            return;
        var refreshes = _pendingRefreshes.Select(kv => new LeaseRefresh(kv.Key, kv.Value.LifetimeSeconds)).ToList();
        foreach (var (id, pending) in _pendingRefreshes)
            _refreshesInFlight[id] = pending.ReplyTo;
        _pendingRefreshes.Clear();
        _link.Send(_server.Registry, new RefreshRegistrations(_identity.DeviceId, refreshes));
    }

    private void OnRefreshed(RegistrationsRefreshed refreshed)
    {
        foreach (var result in refreshed.Results)
        {
            if (!_refreshesInFlight.Remove(result.DeviceId, out var replyTo))
                continue;
            if (result.DeviceId == _identity.DeviceId)
            {
                if (result.Renewed)
                {
                    _grantedLifetime = result.LifetimeSeconds;
                    ScheduleOwnRenewal();
                }
                else
                {
                    LostRegistration();
                }

                continue;
            }

            _link.Send(replyTo, new LeaseRenewed(result.DeviceId, result.Renewed, result.LifetimeSeconds));
            if (!result.Renewed)
                Detach(result.DeviceId);
        }
    }

    private void OnRegistrationsEnded(RegistrationsEnded ended)
    {
        foreach (var id in ended.DeviceIds)
        {
            if (id == _identity.DeviceId)
            {
                LostRegistration();
                continue;
            }

            var replyTo = _pendingDeregistrations.Remove(id, out var asker) ? asker
                : _pnTable.TryGetValue(id, out var known) ? known.Endpoints.Pne : null;
            if (replyTo is not null)
                _link.Send(replyTo, new RegistrationEnded(id, ended.Reason));
            Detach(id);
        }
    }

    /// <summary>The server no longer has this PN GW: register again; the PN follows as one batch.</summary>
    private void LostRegistration()
    {
        Log.Warning("{0}: the server no longer has this PN GW registered; registering again", _identity.DeviceId);
        _registrationId = null;
        _registeredPnes.Clear();
        _registrationAttempts = 0;
        Timers.Cancel(RenewOwnLease.Instance);
        Register();
    }

    private void OnRevoked(CredentialRevoked revoked) =>
        Persist(new RevocationLearned(revoked.DeviceId, revoked.Serials, revoked.Notice), learned =>
        {
            Apply(learned);
            foreach (var pne in _pnTable.Values.Where(p => p.DeviceId != learned.DeviceId))
                _link.Send(pne.Endpoints.Pne, revoked.Notice);
            _waiting.Remove(learned.DeviceId);
            if (_pnTable.ContainsKey(learned.DeviceId) || _registeredPnes.Contains(learned.DeviceId))
            {
                Log.Warning("{0}: PNE {1} was revoked; detached", _identity.DeviceId, learned.DeviceId);
                Detach(learned.DeviceId);
            }

            SnapshotIfDue();
        });
}
