using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's connection management. Towards the server it authenticates (mutual challenge–response on
/// CPNS-2/3/4) and registers, retrying with jittered exponential backoff. Towards its PN it is the verifier of
/// CPNS-1: it challenges each PNE, checks its proof and credential (against the KMC root and the revocation
/// list the server sends), and forwards the registrations that arrive together as one batch. It also relays
/// its PNEs' signed service-group requests to the server.
/// </summary>
public sealed class Connections : UntypedActor, IWithTimers
{
    private sealed record RetryRegistration : INoSerializationVerificationNeeded
    {
        public static readonly RetryRegistration Instance = new();
    }

    private sealed record FlushBatch : INoSerializationVerificationNeeded
    {
        public static readonly FlushBatch Instance = new();
    }

    private sealed record ResendBatch(long BatchId) : INoSerializationVerificationNeeded;

    private sealed record RenewOwnLease : INoSerializationVerificationNeeded
    {
        public static readonly RenewOwnLease Instance = new();
    }

    private sealed record FlushRefreshes : INoSerializationVerificationNeeded
    {
        public static readonly FlushRefreshes Instance = new();
    }

    private sealed record PneChallenge(AuthHello Hello, Octets VerifierNonce, long ExpiresAtMs);

    private static readonly TimeSpan BatchReplyTimeout = TimeSpan.FromSeconds(30);

    private readonly EntityIdentity _identity;
    private readonly CredentialVerifier _verifier;
    private readonly IActorRef _registry;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly DeviceCapabilities _capabilities;
    private readonly CpnsSettings _settings;
    private readonly int _lifetimeSeconds;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly Dictionary<string, PneChallenge> _pneChallenges = new(StringComparer.Ordinal);
    private readonly List<(AuthHello Hello, IActorRef ReplyTo)> _helloBacklog = new();
    private readonly Dictionary<string, (PneRegistration Registration, IActorRef ReplyTo)> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<long, List<string>> _inFlightBatches = new();
    private readonly HashSet<string> _registeredPnes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedDevices = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedSerials = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int LifetimeSeconds, IActorRef ReplyTo)> _pendingRefreshes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _refreshesInFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _pendingDeregistrations = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PneEndpoints> _pneEndpoints = new(StringComparer.Ordinal);
    // The PN table: every PNE registered through here, with its credential, so the PN can be registered again as one batch.
    private readonly Dictionary<string, PneRegistration> _pnTable = new(StringComparer.Ordinal);
    private int _grantedLifetime;
    private readonly Random _jitter = new();
    private GatewayEndpoints _endpoints = null!;
    private readonly List<Octets> _clientNonces = new();
    private Credential? _credential;
    private Credential? _serverCredential;
    private ServerEndpoints? _server;
    private string? _registrationId;
    private int _registrationAttempts;
    private long _nextBatchId;

    public Connections(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef registry, IActorRef smf, IActorRef cskmf,
        DeviceCapabilities capabilities, int lifetimeSeconds, CpnsSettings settings)
    {
        _identity = identity;
        _verifier = trustAnchor.Verifier();
        _registry = registry;
        _smf = smf;
        _cskmf = cskmf;
        _capabilities = capabilities;
        _lifetimeSeconds = lifetimeSeconds;
        _settings = settings;
        _link = new SecureLink(Context, identity, settings, _log);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef registry, IActorRef smf,
        IActorRef cskmf, DeviceCapabilities capabilities, int lifetimeSeconds, CpnsSettings settings) =>
        Akka.Actor.Props.Create<Connections>(identity, trustAnchor, registry, smf, cskmf, capabilities, lifetimeSeconds, settings);

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override void PreStart()
    {
        _endpoints = new GatewayEndpoints(Context.Parent, Self, _smf, _cskmf);
        Register();
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SignedEnvelope envelope:
                OnEnvelope(envelope);
                break;
            case RetryRegistration:
                if (_registrationId is null)
                    Register();
                break;
            case FlushBatch:
                Flush();
                break;
            case ResendBatch resend:
                Resend(resend.BatchId);
                break;
            case RenewOwnLease:
                if (_registrationId is not null)
                {
                    _pendingRefreshes[_identity.DeviceId] = (_lifetimeSeconds, Self);
                    FlushLeaseRefreshes();
                    ScheduleOwnRenewal(0.25);
                }

                break;
            case FlushRefreshes:
                FlushLeaseRefreshes();
                break;
            case DiscoverGateways discover:
                Sender.Tell(new GatewayAdvertisement(_identity.DeviceId, _identity.Kind, Context.Parent, _registrationId is not null));
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _registrationId is not null, _registrationId,
                    _registeredPnes.Count));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnEnvelope(SignedEnvelope envelope)
    {
        // A hello, challenge or registration carries (or names the credential of) the key that signed it.
        if (!_link.TryOpenSelfSigned(envelope, SigningKeyIn, out var message, out var senderId))
            return;
        switch (message)
        {
            case AuthChallenge challenge when senderId == challenge.VerifierId:
                OnServerChallenge(challenge);
                break;
            case GatewayRegistered registered when _server is null || senderId == _server.ServerId:
                OnRegistered(registered);
                break;
            case RegistrationRejected rejected when rejected.DeviceId == _identity.DeviceId:
                _log.Error("{0}: the server refused this PN GW: {1}{2} ({3})", _identity.DeviceId, rejected.Error,
                    rejected.Auth is null ? "" : "/" + rejected.Auth, rejected.Detail);
                break;
            case PnesRegistered registered when senderId == _server?.ServerId:
                OnPnesRegistered(registered);
                break;
            case CredentialRevoked revoked when senderId == _server?.ServerId:
                OnRevoked(revoked);
                break;
            case RegistrationsRefreshed refreshed when senderId == _server?.ServerId:
                OnRefreshed(refreshed);
                break;
            case RegistrationsEnded ended when senderId == _server?.ServerId:
                OnRegistrationsEnded(ended);
                break;
            case RefreshLease refresh when refresh.DeviceId == senderId && _registeredPnes.Contains(senderId):
                _pendingRefreshes[senderId] = (refresh.LifetimeSeconds, Sender);
                if (_settings.RegistrationBatchWindow <= TimeSpan.Zero)
                    FlushLeaseRefreshes();
                else if (!Timers.IsTimerActive(FlushRefreshes.Instance))
                    Timers.StartSingleTimer(FlushRefreshes.Instance, FlushRefreshes.Instance, _settings.RegistrationBatchWindow);
                break;
            case Deregister deregister when deregister.DeviceId == senderId && _registeredPnes.Contains(senderId):
                _pendingDeregistrations[senderId] = Sender;
                _link.Send(_server!.Registry, new DeregisterEntities(_identity.DeviceId, [senderId]));
                break;
            case AuthHello hello when hello.DeviceId == senderId:
                OnPneHello(hello);
                break;
            case RegisterPne register when register.DeviceId == senderId:
                OnRegisterPne(register);
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege when _registeredPnes.Contains(senderId):
                // A PNE's own signed request: relayed unchanged, so the server checks the PNE's signature itself.
                _server?.Smf.Forward(envelope);
                break;
            default:
                _log.Warning("{0}: unexpected {1} from {2}; ignored", _identity.DeviceId, message.GetType().Name, senderId);
                break;
        }
    }

    /// <summary>The key a not-yet-trusted sender signs with: the server's from its checked credential, a PNE's from its hello.</summary>
    private Octets? SigningKeyIn(object message) => message switch
    {
        AuthChallenge challenge => _verifier.Verify(challenge.VerifierCredential, Context.System.Scheduler.Now, null,
            challenge.VerifierId, EntityKind.Server).Credential?.Keys.Signing,
        AuthHello hello => hello.Keys.Signing,
        RegisterPne register => register.Keys.Signing,
        RegistrationRejected => _server?.Keys.Signing,
        _ => null,
    };

    // ---- Towards the server ----

    private void Register()
    {
        _registrationAttempts++;
        // A slow server may answer an earlier hello after we sent another: any of the last few nonces is accepted.
        var nonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _clientNonces.Add(nonce);
        if (_clientNonces.Count > 4)
            _clientNonces.RemoveAt(0);
        _link.Send(_registry, new AuthHello(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _credential, nonce,
            Registry.GatewayContext));
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, Backoff(_registrationAttempts));
    }

    /// <summary>Jittered exponential backoff: uniform in [50%, 100%] of min(max, initial·2^attempt).</summary>
    private TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(_settings.RegistrationRetryMax.Ticks,
            _settings.RegistrationRetryInitial.Ticks << Math.Min(attempt, 20));
        return TimeSpan.FromTicks((long)(ceiling * (0.5 + 0.5 * _jitter.NextDouble())));
    }

    private void OnServerChallenge(AuthChallenge challenge)
    {
        if (!_clientNonces.Contains(challenge.ClientNonce) || challenge.DeviceId != _identity.DeviceId)
        {
            _log.Warning("{0}: a challenge that answers no hello of ours; ignored", _identity.DeviceId);
            return;
        }

        var serverKey = _link.Guard.LastSelfSignedKey!; // from its credential, checked while opening
        var transcript = AuthTranscripts.Verifier(Registry.GatewayContext, _identity.DeviceId, challenge.VerifierId,
            challenge.ClientNonce, challenge.VerifierNonce);
        if (!EntityIdentity.Verify(serverKey, transcript.Bytes, challenge.VerifierSignature))
        {
            _log.Warning("{0}: the server's challenge signature does not verify; not registering with it", _identity.DeviceId);
            return;
        }

        _link.Guard.Trust(challenge.VerifierId, serverKey);
        _serverCredential = challenge.VerifierCredential;
        var proof = Sign(Registry.GatewayContext, challenge.VerifierId, challenge.ClientNonce, challenge.VerifierNonce);
        _link.Send(_registry, new RegisterGateway(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _credential, proof,
            _capabilities, _lifetimeSeconds, _endpoints));
    }

    private AuthProof Sign(string context, string verifierId, Octets clientNonce, Octets verifierNonce) =>
        new(context, clientNonce, verifierNonce,
            _identity.Sign(AuthTranscripts.Client(context, _identity.DeviceId, verifierId, clientNonce, verifierNonce).Bytes));

    private void OnRegistered(GatewayRegistered registered)
    {
        Timers.Cancel(RetryRegistration.Instance);
        _clientNonces.Clear();
        _registrationId = registered.RegistrationId;
        _grantedLifetime = registered.LifetimeSeconds;
        ScheduleOwnRenewal();
        _credential = registered.Credential;
        _server = registered.Server;
        var attached = new ServerAttached(registered.Server, _serverCredential!);
        _smf.Tell(attached);
        _cskmf.Tell(attached);
        Context.System.EventStream.Publish(new EntityRegistered(_identity.DeviceId, _identity.Kind, registered.RegistrationId));
        foreach (var (hello, replyTo) in _helloBacklog)
            Challenge(hello, replyTo);
        _helloBacklog.Clear();
        RegisterPnAgain();
        if (_waiting.Count > 0)
            Self.Tell(FlushBatch.Instance);
    }

    /// <summary>
    /// After this PN GW registered again (a restart, an expiry, a server restart), its whole PN is registered again
    /// in one batch, each PNE by its credential; the PNEs are told their new registrations.
    /// </summary>
    private void RegisterPnAgain()
    {
        var known = _pnTable.Values.Where(p => !_waiting.ContainsKey(p.DeviceId) && p.Credential is not null).ToList();
        if (known.Count == 0)
            return;
        foreach (var pne in known)
            _waiting[pne.DeviceId] = (pne with { Proof = null }, pne.Endpoints.Pne);
        _log.Info("{0}: registering its PN of {1} PNEs again in one batch", _identity.DeviceId, known.Count);
        Flush();
    }

    /// <summary>The lease is renewed at half its lifetime (and asked again at three quarters if no answer came).</summary>
    private void ScheduleOwnRenewal(double fraction = 0.5) =>
        Timers.StartSingleTimer(RenewOwnLease.Instance, RenewOwnLease.Instance, TimeSpan.FromSeconds(_grantedLifetime * fraction));

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
                : _pneEndpoints.TryGetValue(id, out var endpoints) ? endpoints.Pne : null;
            if (replyTo is not null)
                _link.Send(replyTo, new RegistrationEnded(id, ended.Reason));
            Detach(id);
        }
    }

    /// <summary>The server no longer has this PN GW: register again (the PNEs follow, as they renew or re-register).</summary>
    private void LostRegistration()
    {
        _log.Warning("{0}: the server no longer has this PN GW registered; registering again", _identity.DeviceId);
        _registrationId = null;
        _registeredPnes.Clear();
        _registrationAttempts = 0;
        Timers.Cancel(RenewOwnLease.Instance);
        Register();
    }

    private void Detach(string pneId)
    {
        _pnTable.Remove(pneId);
        if (!_registeredPnes.Remove(pneId) && !_pneEndpoints.ContainsKey(pneId))
            return;
        _pneEndpoints.Remove(pneId);
        _link.Guard.Forget(pneId);
        var detached = new PneDetached(pneId);
        _smf.Tell(detached);
        _cskmf.Tell(detached);
    }

    private void OnRevoked(CredentialRevoked revoked)
    {
        _revokedDevices.Add(revoked.DeviceId);
        _revokedSerials.UnionWith(revoked.Serials);
        _link.Guard.Revoke(revoked.DeviceId);
        _pnTable.Remove(revoked.DeviceId);
        if (_registeredPnes.Remove(revoked.DeviceId) | _waiting.Remove(revoked.DeviceId))
        {
            var detached = new PneDetached(revoked.DeviceId);
            _smf.Tell(detached);
            _cskmf.Tell(detached);
            _log.Warning("{0}: PNE {1} was revoked; detached", _identity.DeviceId, revoked.DeviceId);
        }
    }

    // ---- Towards the PN (CPNS-1) ----

    private void OnPneHello(AuthHello hello)
    {
        if (hello.Kind != EntityKind.Pne || !DeviceIds.IsValid(hello.DeviceId))
        {
            RejectPne(Sender, hello.DeviceId, RegistrationError.InvalidRequest, "a PNE authenticates as Pne with a valid id");
            return;
        }

        if (Screen(hello.DeviceId, hello.Keys, hello.Credential) is { } failure)
        {
            RejectPne(Sender, hello.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        if (_credential is null)
            _helloBacklog.Add((hello, Sender)); // challenged once this PN GW has its own credential
        else
            Challenge(hello, Sender);
    }

    private void Challenge(AuthHello hello, IActorRef replyTo)
    {
        var nonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _pneChallenges[hello.DeviceId] = new PneChallenge(hello, nonce, NowMs + (long)_settings.AuthenticationTimeout.TotalMilliseconds);
        var signature = _identity.Sign(
            AuthTranscripts.Verifier(Registry.PneContext, hello.DeviceId, _identity.DeviceId, hello.ClientNonce, nonce).Bytes);
        _link.Send(replyTo, new AuthChallenge(hello.DeviceId, _identity.DeviceId, _credential!, hello.ClientNonce, nonce, signature));
    }

    private void OnRegisterPne(RegisterPne register)
    {
        if (!_pneChallenges.Remove(register.DeviceId, out var challenge) || challenge.ExpiresAtMs < NowMs ||
            challenge.VerifierNonce != register.Proof.VerifierNonce || challenge.Hello.ClientNonce != register.Proof.ClientNonce ||
            challenge.Hello.Keys != register.Keys)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, "no open challenge matches this registration",
                AuthFailure.NoChallenge);
            return;
        }

        var transcript = AuthTranscripts.Client(Registry.PneContext, register.DeviceId, _identity.DeviceId,
            register.Proof.ClientNonce, register.Proof.VerifierNonce);
        if (register.Proof.Context != Registry.PneContext ||
            !EntityIdentity.Verify(register.Keys.Signing, transcript.Bytes, register.Proof.Signature))
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, "the PNE's proof does not verify",
                AuthFailure.BadSignature);
            return;
        }

        if (Screen(register.DeviceId, register.Keys, register.Credential) is { } failure)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        _link.Guard.Trust(register.DeviceId, register.Keys.Signing);
        var registration = new PneRegistration(register.DeviceId, register.Keys, register.Credential, register.Proof,
            register.Capabilities, register.LifetimeSeconds, register.Endpoints);
        _waiting[register.DeviceId] = (registration, Sender);
        // The SMF and CSKMF learn of the PNE at once, so a group notice naming it never arrives before it.
        var attached = new PneAttached(register.DeviceId, register.Keys, register.Endpoints);
        _smf.Tell(attached);
        _cskmf.Tell(attached);

        if (_waiting.Count >= _settings.RegistrationBatchMax || _settings.RegistrationBatchWindow <= TimeSpan.Zero)
            Flush();
        else if (!Timers.IsTimerActive(FlushBatch.Instance))
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, _settings.RegistrationBatchWindow);
    }

    private sealed record Screening(AuthFailure Failure, string Detail);

    private Screening? Screen(string deviceId, PublicKeys keys, Credential? credential)
    {
        if (_revokedDevices.Contains(deviceId))
            return new Screening(AuthFailure.Revoked, $"{deviceId} is revoked");
        if (credential is null)
            return null;
        var check = _verifier.Verify(credential, Context.System.Scheduler.Now, _revokedSerials, deviceId, EntityKind.Pne);
        if (!check.Valid)
            return new Screening(AuthTranscripts.FromCredentialError(check.Error!.Value), check.Detail!);
        return check.Credential!.Keys != keys
            ? new Screening(AuthFailure.KeyMismatch, $"the credential of {deviceId} binds other keys")
            : null;
    }

    private void RejectPne(IActorRef replyTo, string deviceId, RegistrationError error, string detail, AuthFailure? auth = null)
    {
        _log.Info("{0}: PNE {1} refused: {2}{3} ({4})", _identity.DeviceId, deviceId, error, auth is null ? "" : "/" + auth, detail);
        _link.Send(replyTo, new RegistrationRejected(deviceId, error, detail, auth));
    }

    private void Flush()
    {
        Timers.Cancel(FlushBatch.Instance);
        if (_server is null || _waiting.Count == 0)
            return;
        var batchId = ++_nextBatchId;
        var ids = _waiting.Keys.Where(id => !_inFlightBatches.Values.Any(b => b.Contains(id))).ToList();
        if (ids.Count == 0)
            return;
        _inFlightBatches[batchId] = ids;
        SendBatch(batchId, ids);
    }

    private void SendBatch(long batchId, List<string> ids)
    {
        var pnes = ids.Where(_waiting.ContainsKey).Select(id => _waiting[id].Registration).ToList();
        if (pnes.Count == 0)
        {
            _inFlightBatches.Remove(batchId);
            return;
        }

        _link.Send(_server!.Registry, new RegisterPnes(_identity.DeviceId, pnes));
        Timers.StartSingleTimer(("batch", batchId), new ResendBatch(batchId), BatchReplyTimeout);
    }

    private void Resend(long batchId)
    {
        if (!_inFlightBatches.TryGetValue(batchId, out var ids))
            return;
        _log.Warning("{0}: no answer to a batch of {1} PNE registrations; sending it again", _identity.DeviceId, ids.Count);
        SendBatch(batchId, ids);
    }

    private void OnPnesRegistered(PnesRegistered registered)
    {
        var answered = registered.Results.Select(r => r.DeviceId).ToHashSet(StringComparer.Ordinal);
        foreach (var (batchId, _) in _inFlightBatches.Where(kv => kv.Value.All(answered.Contains)).ToList())
        {
            _inFlightBatches.Remove(batchId);
            Timers.Cancel(("batch", batchId));
        }

        foreach (var result in registered.Results)
        {
            if (!_waiting.Remove(result.DeviceId, out var waiting))
                continue;
            if (result.Accepted)
            {
                _registeredPnes.Add(result.DeviceId);
                _pneEndpoints[result.DeviceId] = waiting.Registration.Endpoints;
                _pnTable[result.DeviceId] = waiting.Registration with { Credential = result.Credential };
                _link.Send(waiting.ReplyTo, new PneRegistered(result.DeviceId, _identity.DeviceId, result.RegistrationId!,
                    result.LifetimeSeconds, result.Credential!, _identity.PublicKeys, _endpoints, _serverCredential!));
            }
            else
            {
                _link.Guard.Forget(result.DeviceId);
                _link.Send(waiting.ReplyTo,
                    new RegistrationRejected(result.DeviceId, result.Error!.Value, result.Detail ?? "", result.Auth));
                var detached = new PneDetached(result.DeviceId);
                _smf.Tell(detached);
                _cskmf.Tell(detached);
            }
        }
    }
}
