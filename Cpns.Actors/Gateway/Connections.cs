using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's connection management (<c>connections</c>), a thin actor over four parts that each keep their own state:
/// the registration with the server (<see cref="GatewayRegistration"/>: authenticate, register, heartbeats, leases, and register
/// again — after a jittered wait — when the server restarted or lost it); the durable PN table against which PNEs are
/// verified (<see cref="PnTable"/>, with <see cref="PnRegistrations"/>, the registrations forwarded in batches), so a
/// restarted PN GW registers its whole PN again as one batch; which PNEs can be reached (<see cref="PnLinks"/>); and
/// PNEs moving between PNs (<see cref="PnMoves"/>). It also relays its PNEs' signed requests to the server.
/// </summary>
public sealed class Connections : CpnsPersistentActor, IWithTimers
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

    private sealed record FlushBatch : INoSerializationVerificationNeeded
    {
        public static readonly FlushBatch Instance = new();
    }

    private sealed record ResendBatch(long BatchId) : INoSerializationVerificationNeeded;

    private sealed record ConsentTimeout : INodeLocal
    {
        public static readonly ConsentTimeout Instance = new();
    }

    private readonly EntityIdentity _identity;
    private readonly CredentialVerifier _verifier;
    private readonly TrustAnchor _trustAnchor;
    private readonly ActorSelection _registry;
    private readonly GatewayFunctions _functions;
    private DeviceCapabilities _capabilities;
    private readonly int _lifetimeSeconds;
    private readonly SecureLink _link;
    private readonly string? _enrolmentToken;

    private readonly GatewayRegistration _ownRegistration = new();
    private readonly PnTable _pnTable;
    private readonly PnRegistrations _registrations;
    private readonly PnLinks _pnLinks = new();
    private readonly PnMoves _moves;
    private readonly List<(AuthHello Hello, IActorRef ReplyTo)> _helloBacklog = new();
    private ChallengeBook? _pneChallengeBook;
    private RegistrationAdmission? _registrationAdmission;
    private (Credential Credential, SecurityLevel? Ceiling)? _ownCeiling;

    public Connections(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef registry, GatewayFunctions functions,
        DeviceCapabilities capabilities, int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken) : base(settings)
    {
        _enrolmentToken = enrolmentToken;
        _functions = functions;
        _identity = identity;
        _verifier = trustAnchor.Verifier();
        _trustAnchor = trustAnchor;
        // By path: a restarted server is a new actor at the same place.
        _registry = Context.ActorSelection(registry.Path);
        _capabilities = capabilities;
        _lifetimeSeconds = lifetimeSeconds;
        _link = new SecureLink(Context, identity, settings, Log);
        _pnTable = new PnTable(_verifier);
        _registrations = new PnRegistrations(settings.Timeouts.BatchReply);
        _moves = new PnMoves(Math.Max(1, settings.Registration.BatchMax) * 16);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef registry, GatewayFunctions functions,
        DeviceCapabilities capabilities, int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken = null) =>
        Akka.Actor.Props.Create(typeof(Connections), identity, trustAnchor, registry, functions, capabilities, lifetimeSeconds, settings,
            enrolmentToken);

    public override string PersistenceId => $"gateway-{_identity.DeviceId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    private GatewayEndpoints Endpoints =>
        new(Context.Parent, Self, _functions.Smf, _functions.Cskmf, _functions.Relay, _functions.DirectoryCache, _functions.Content);

    private ChallengeBook PneChallenges => _pneChallengeBook ??=
        new ChallengeBook(_identity, AuthTranscripts.PneContext, Settings.Security.AuthenticationTimeout);

    private RegistrationAdmission Admission => _registrationAdmission ??=
        new RegistrationAdmission(Settings.Load.RegistrationsInProgress, Settings.Load.BusyLag);

    /// <summary>PNEs challenged and not yet answered, and those waiting for the server's answer.</summary>
    private int RegistrationsInProgress => PneChallenges.OpenCount(NowMs) + _registrations.WaitingCount;

    /// <summary>What the PN GW's functions are all told (a PNE attached or left, the server, reachability).</summary>
    private void TellFunctions(object message)
    {
        foreach (var function in _functions.All)
            function.Tell(message);
    }

    protected override object CreateSnapshot() => _pnTable.Snapshot(_ownRegistration.Credential);

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: PnTableSnapshot snapshot }:
                _ownRegistration.Credential = snapshot.Credential;
                _pnTable.Restore(snapshot);
                foreach (var revoked in snapshot.RevokedDevices ?? [])
                    _link.Guard.Revoke(revoked);
                break;
            case ICpnsEvent @event:
                Apply(@event);
                break;
            case RecoveryCompleted:
                if (_pnTable.Count > 0)
                    Log.Info("{0}: recovered a PN of {1} PNEs", _identity.DeviceId, _pnTable.Count);
                Register();
                Timers.StartPeriodicTimer(CheckLinks.Instance, CheckLinks.Instance, Settings.Connections.HeartbeatInterval);
                break;
        }
    }

    private void Apply(ICpnsEvent @event)
    {
        if (@event is GatewayCredentialStoredEvent stored)
            _ownRegistration.Credential = stored.Credential;
        _pnTable.Apply(@event);
        if (@event is RevocationLearnedEvent revoked)
            _link.Guard.Revoke(revoked.DeviceId);
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ISecureWire wire:
                OnWire(wire);
                break;
            case ConsentTimeout:
                OnConsentTimeout();
                break;
            case RetryRegistration:
                if (!_ownRegistration.IsRegistered)
                    Register();
                break;
            case FlushBatch:
                Flush();
                break;
            case ResendBatch resend:
                Resend(resend.BatchId);
                break;
            case RenewOwnLease:
                RenewOwn();
                break;
            case FlushRefreshes:
                FlushLeaseRefreshes();
                break;
            case CheckLinks:
                CheckServerLink();
                CheckPnLinks();
                break;
            case UplinkSeen seen:
                Heard(seen.DeviceId);
                break;
            case SetGatewayPolicy policy:
                _moves.AcceptBridges = policy.AcceptBridges;
                _moves.AgreeToHandover = policy.AgreeToHandover;
                break;
            case TakeOverPn takeOver:
                TakeOver(takeOver);
                break;
            case LocalRequest { Request: DmAlert alert }:
                RaiseAlert(alert, Sender);
                break;
            case DmAlert or PublishService or WithdrawService or SearchServices:
                _link.CountRefusal("BareRequest");
                Log.Warning("{0}: refused a bare {1}: the device's applications ask through its node-local API",
                    _identity.DeviceId, message.GetType().Name);
                break;
            case UpdateCapabilities update when update.DeviceId == _identity.DeviceId:
                UpdateOwnCapabilities(update, Sender);
                break;
            case DiscoverGateways discover:
                Sender.Tell(Advertisement(discover.DeviceId));
                break;
            case GetKnownRevocations:
                Sender.Tell(_pnTable.Known());
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _ownRegistration.IsRegistered, _ownRegistration.RegistrationId,
                    _registrations.RegisteredCount));
                break;
            case GetReachability query:
                Sender.Tell(_pnLinks.Of(query.DeviceId));
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnWire(ISecureWire wire)
    {
        // A hello, challenge or registration carries (or names the credential of) the key that signed it.
        if (!_link.TryOpenSelfSigned(wire, SigningKeyIn, out var message, out var senderId))
            return;
        if (senderId == _ownRegistration.ServerId || message is AuthChallenge)
        {
            OnFromServer(message, senderId);
            return;
        }

        switch (message)
        {
            case HandoverRequest request when request.NewGatewayId == senderId:
                OnHandoverRequest(request);
                return;
            case HandoverAnswer answer when answer.OldGatewayId == senderId:
                OnHandoverAnswer(answer);
                return;
            case MoveConsent consent when consent.DeviceId == senderId:
                OnMoveConsent(consent);
                return;
        }

        Heard(senderId);
        OnFromPne(message, senderId, wire as SignedEnvelope);
    }

    /// <summary>The key a not-yet-trusted sender signs with: the server's from its checked credential, a PNE's from its hello.</summary>
    private Octets? SigningKeyIn(object message) => message switch
    {
        AuthChallenge challenge => _verifier.Verify(challenge.VerifierCredential, Context.System.Scheduler.Now, null,
            challenge.VerifierId, EntityKind.Server).Credential?.Keys.Signing,
        AuthHello hello => hello.Keys.Signing,
        RegisterPne register => register.Keys.Signing,
        BridgeRequest bridge => _verifier.Verify(bridge.Credential, Context.System.Scheduler.Now, _pnTable.RevokedSerials,
            bridge.DeviceId, EntityKind.Pne).Credential?.Keys.Signing,
        HandoverRequest handover => _verifier.Verify(handover.NewGatewayCredential, Context.System.Scheduler.Now, _pnTable.RevokedSerials,
            handover.NewGatewayId, EntityKind.PnGateway, EntityKind.Both).Credential?.Keys.Signing,
        MoveConsent consent => _verifier.Verify(consent.Credential, Context.System.Scheduler.Now, _pnTable.RevokedSerials,
            consent.DeviceId, EntityKind.Pne).Credential?.Keys.Signing,
        HandoverAnswer answer => _verifier.Verify(answer.OldGatewayCredential, Context.System.Scheduler.Now, _pnTable.RevokedSerials,
            answer.OldGatewayId, EntityKind.PnGateway, EntityKind.Both).Credential?.Keys.Signing,
        _ => null,
    };

    /// <summary>This PN GW's answer to a PNE's scan; the ceiling is read from its credential once per credential.</summary>
    private GatewayAdvertisement Advertisement(string deviceId)
    {
        var registered = _ownRegistration.CanAdmit;
        if (registered && _ownCeiling?.Credential != _ownRegistration.Credential)
            _ownCeiling = (_ownRegistration.Credential!, _verifier.Verify(_ownRegistration.Credential!, Context.System.Scheduler.Now).Credential?.PnSecurityCeiling);
        var now = NowMs;
        var retryAfterMs = registered && !_registrations.IsRegistered(deviceId)
            ? Admission.Answer(deviceId, RegistrationsInProgress, DispatcherLag.Of(Context.System).Current, now,
                now + (long)(Settings.Discovery.ScanWindow + Settings.Discovery.PlaceHeldAfterScan).TotalMilliseconds, Random.Shared)
            : 0;
        if (retryAfterMs > 0)
            CpnsMetrics.BusyAnswers.Add(1, CpnsMetrics.Tag("function", "pn-gw-admission"));
        return new GatewayAdvertisement(_identity.DeviceId, _identity.Kind, Context.Parent, registered, _pnTable.Count,
            PnSecurity.Held(_capabilities.PnSecurityLevel, registered ? _ownCeiling!.Value.Ceiling : null),
            registered && _moves.AcceptBridges, retryAfterMs);
    }

    // ---- The server (CPNS-2/3/4) ----

    /// <summary>
    /// This PN GW's own capabilities changed (a PN technology came or went): the relay answers with them from now on, and
    /// the server is told, since the PN's security level decides which keys may enter it. Unregistered, the registration
    /// carries them.
    /// </summary>
    private void UpdateOwnCapabilities(UpdateCapabilities update, IActorRef asker)
    {
        _capabilities = update.Capabilities;
        _functions.Relay.Tell(update);
        if (_ownRegistration.Server is not { } server || !_ownRegistration.IsRegistered)
        {
            asker.Tell(new Status.Failure(new InvalidOperationException(
                $"{_identity.DeviceId} is not registered yet; its registration will carry the new capabilities")));
            return;
        }

        _ownRegistration.CapabilitiesAsker = asker;
        _link.Send(server.Registry, new GatewayCapabilitiesChanged(_identity.DeviceId, update.Capabilities));
    }

    /// <summary>Device-initiated DM (seed §5.1.2) by the PN GW itself: its own alert, signed by it, to the server's DM.</summary>
    private void RaiseAlert(DmAlert alert, IActorRef asker)
    {
        if (_ownRegistration.Server is not { } server || !_ownRegistration.IsRegistered)
        {
            asker.Tell(new DmAlertAnswer(_identity.DeviceId, 0, false, $"{_identity.DeviceId} is not registered yet", alert.RequestId));
            return;
        }

        _link.Send(server.Dm, alert with { DeviceId = _identity.DeviceId, RequestId = _ownRegistration.AlertAsked(asker, alert.RequestId) });
    }

    private void OnFromServer(object message, string senderId)
    {
        if (_ownRegistration.ServerId is not null && senderId == _ownRegistration.ServerId)
            _ownRegistration.LastHeardMs = NowMs; // anything authenticated from the server shows it is there
        switch (message)
        {
            case AuthChallenge challenge when senderId == challenge.VerifierId:
                OnServerChallenge(challenge);
                break;
            case GatewayRegistered registered:
                OnRegistered(registered);
                break;
            case RegistrationRejected { Error: RegistrationError.Busy } busy when busy.DeviceId == _identity.DeviceId && !_ownRegistration.IsRegistered:
                Log.Info("{0}: the server is busy ({1}); registering again in {2} ms", _identity.DeviceId, busy.Detail, busy.RetryAfterMs);
                _ownRegistration.AttemptNotCounted();
                Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, Backpressure.WaitFor(busy.RetryAfterMs));
                break;
            case RegistrationRejected rejected when rejected.DeviceId == _identity.DeviceId:
                Log.Warning("{0}: the server refused this PN GW: {1}{2} ({3})", _identity.DeviceId, rejected.Error,
                    rejected.Auth is null ? "" : "/" + rejected.Auth, rejected.Detail);
                break;
            case DmAlertAnswer answer when answer.DeviceId == _identity.DeviceId && _ownRegistration.AlertAnswered(answer.RequestId, out var alerted):
                alerted.Asker.Tell(answer with { RequestId = alerted.TheirRequestId });
                break;
            case GatewayCapabilitiesAccepted accepted when accepted.GatewayId == _identity.DeviceId:
                Log.Info("{0}: the server holds this PN to {1} security", _identity.DeviceId, accepted.PnSecurityLevel);
                _ownRegistration.CapabilitiesAsker?.Tell(accepted);
                _ownRegistration.CapabilitiesAsker = null;
                break;
            case HeartbeatAck ack:
                _ownRegistration.LastHeardMs = NowMs;
                if (_ownRegistration.RestartedSince(ack))
                    ServerLost("the server restarted");
                break;
            case PnesRegistered registered:
                OnPnesRegistered(registered);
                break;
            case MoveNonceIssued issued when senderId == _ownRegistration.ServerId:
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
        var nonce = _ownRegistration.NextHello();
        _registry.Tell(_link.Seal(new AuthHello(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _ownRegistration.Credential, nonce,
            AuthTranscripts.GatewayContext)), Self);
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance,
            Settings.Registration.Backoff.Delay(_ownRegistration.Attempts + 1));
    }

    private void OnServerChallenge(AuthChallenge challenge)
    {
        if (!_ownRegistration.AnswersOurHello(challenge, _identity.DeviceId))
        {
            Log.Warning("{0}: a challenge that answers no hello of ours; ignored", _identity.DeviceId);
            return;
        }

        var serverKey = _link.Guard.LastSelfSignedKey!; // from its credential, checked while opening
        if (ChallengeClaimant.Answer(AuthTranscripts.GatewayContext, _identity, challenge, serverKey, _ownRegistration.Credential, _enrolmentToken)
            is not { } answer)
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
        _ownRegistration.Challenged(challenge);
        _registry.Tell(_link.Seal(new RegisterGateway(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _ownRegistration.Credential,
            answer.Proof, _capabilities, _lifetimeSeconds, Endpoints, answer.Enrolment)), Self);
    }

    private void OnRegistered(GatewayRegistered registered)
    {
        if (_ownRegistration.Credential == registered.Credential)
            Registered(registered);
        else
            Persist(new GatewayCredentialStoredEvent(registered.Credential), e =>
            {
                Apply(e);
                Registered(registered);
            });
    }

    private void Registered(GatewayRegistered registered)
    {
        Timers.Cancel(RetryRegistration.Instance);
        _ownRegistration.Registered(registered, NowMs);
        ScheduleOwnRenewal();
        TellFunctions(new ServerAttached(registered.Server, _ownRegistration.ServerCredential!, _verifier));
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
        if (!_ownRegistration.IsRegistered || _ownRegistration.Server is not { } server)
            return;
        if (_ownRegistration.Silent(NowMs, Settings))
        {
            ServerLost("the server stopped answering heartbeats");
            return;
        }

        _link.Send(server.Registry, new Heartbeat(_identity.DeviceId, CapabilityHash.Of(_capabilities)));
    }

    /// <summary>Registers again after a random wait within the restart spread, then with exponential backoff.</summary>
    private void ServerLost(string why)
    {
        Log.Warning("{0}: {1}; registering again", _identity.DeviceId, why);
        Unregistered();
        var wait = Settings.Connections.RestartSpread * Random.Shared.NextDouble();
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, wait);
    }

    /// <summary>The server no longer has this PN GW: register again; the PN follows as one batch.</summary>
    private void LostRegistration()
    {
        Log.Warning("{0}: the server no longer has this PN GW registered; registering again", _identity.DeviceId);
        Unregistered();
        Register();
    }

    private void Unregistered()
    {
        _ownRegistration.Lost();
        _registrations.ServerLost();
        Timers.Cancel(RenewOwnLease.Instance);
    }

    /// <summary>The lease is renewed at half its lifetime (and asked again at three quarters if no answer came).</summary>
    private void ScheduleOwnRenewal(double fraction = 0.5) =>
        Timers.StartSingleTimer(RenewOwnLease.Instance, RenewOwnLease.Instance,
            TimeSpan.FromSeconds(_ownRegistration.GrantedLifetimeSeconds * fraction));

    private void RenewOwn()
    {
        if (!_ownRegistration.IsRegistered)
            return;
        _ownRegistration.RefreshWanted(_identity.DeviceId, _lifetimeSeconds, Self);
        FlushLeaseRefreshes();
        ScheduleOwnRenewal(0.25);
    }

    /// <summary>This PN GW's own renewal and its PNEs' that arrived meanwhile go to the server as one batch.</summary>
    private void FlushLeaseRefreshes()
    {
        Timers.Cancel(FlushRefreshes.Instance);
        if (_ownRegistration.Server is not { } server || _ownRegistration.TakeRefreshes() is not { Count: > 0 } refreshes)
            return;
        _link.Send(server.Registry, new RefreshRegistrations(_identity.DeviceId, refreshes));
    }

    private void OnRefreshed(RegistrationsRefreshed refreshed)
    {
        foreach (var result in refreshed.Results)
        {
            if (!_ownRegistration.RefreshAnswered(result.DeviceId, out var replyTo))
                continue;
            if (result.DeviceId == _identity.DeviceId)
            {
                if (result.Renewed)
                {
                    _ownRegistration.GrantedLifetimeSeconds = result.LifetimeSeconds;
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

            var replyTo = _ownRegistration.DeregistrationAnswered(id) ?? (_pnTable.TryGet(id, out var known) ? known.Endpoints.Pne : null);
            if (replyTo is not null)
                _link.Send(replyTo, new RegistrationEnded(id, ended.Reason));
            Detach(id);
        }
    }

    private void OnRevoked(CredentialRevoked revoked) =>
        Persist(new RevocationLearnedEvent(revoked.DeviceId, revoked.Serials, revoked.Notice), learned =>
        {
            Apply(learned);
            foreach (var pne in _pnTable.Pnes.Where(p => p.DeviceId != learned.DeviceId))
                _link.Send(pne.Endpoints.Pne, revoked.Notice);
            _registrations.StopWaiting(learned.DeviceId);
            if (_pnTable.Contains(learned.DeviceId) || _registrations.IsRegistered(learned.DeviceId))
            {
                Log.Warning("{0}: PNE {1} was revoked; detached", _identity.DeviceId, learned.DeviceId);
                Detach(learned.DeviceId);
            }

            SnapshotIfDue();
        });

    // ---- The PN (CPNS-1): this PN GW verifies its PNEs ----

    private void OnFromPne(object message, string senderId, SignedEnvelope? envelope)
    {
        switch (message)
        {
            case AuthHello hello when hello.DeviceId == senderId:
                OnPneHello(hello);
                break;
            case BridgeRequest bridge when bridge.DeviceId == senderId:
                OnBridgeRequest(bridge);
                break;
            case RegisterPne register when register.DeviceId == senderId:
                OnRegisterPne(register);
                break;
            case Heartbeat heartbeat:
                _functions.Relay.Tell(new CapabilityHashSeen(senderId, heartbeat.CapabilityHash));
                break;
            case GoingToSleep when _pnLinks.Knows(senderId):
                Announce(_pnLinks.FellAsleep(senderId));
                break;
            case RefreshLease refresh when _registrations.IsRegistered(senderId):
                _ownRegistration.RefreshWanted(senderId, refresh.LifetimeSeconds, Sender);
                if (Settings.Registration.BatchWindow <= TimeSpan.Zero)
                    FlushLeaseRefreshes();
                else if (!Timers.IsTimerActive(FlushRefreshes.Instance))
                    Timers.StartSingleTimer(FlushRefreshes.Instance, FlushRefreshes.Instance, Settings.Registration.BatchWindow);
                break;
            case Deregister deregister when deregister.DeviceId == senderId && _registrations.IsRegistered(senderId):
                _ownRegistration.DeregistrationAsked(senderId, Sender);
                _link.Send(_ownRegistration.Server!.Registry, new DeregisterEntities(_identity.DeviceId, [senderId]));
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege when _registrations.IsRegistered(senderId):
                // A PNE's own signed request: relayed unchanged, so the server checks the PNE's signature itself.
                RelayToServer(envelope, message, senderId, _ownRegistration.Server?.Smf);
                break;
            case PublishStatus or SubscribeStatus or UnsubscribeStatus when _registrations.IsRegistered(senderId):
                RelayToServer(envelope, message, senderId, _ownRegistration.Server?.Status);
                break;
            case DmAlert when _registrations.IsRegistered(senderId):
                RelayToServer(envelope, message, senderId, _ownRegistration.Server?.Dm);
                break;
            case PublishService or WithdrawService or NegotiateService when _registrations.IsRegistered(senderId):
                RelayToServer(envelope, message, senderId, _ownRegistration.Server?.Directory);
                break;
            case PostContent post when _registrations.IsRegistered(senderId):
                if (envelope is null)
                    RelayToServer(envelope, message, senderId, null);
                else
                    _functions.Content.Forward(new PostFromPne(senderId, post, envelope));
                break;
            case ContentReceipt receipt when receipt.DeviceId == senderId:
                _functions.Content.Tell(receipt);
                break;
            case SearchServices when _registrations.IsRegistered(senderId):
                RelayToServer(envelope, message, senderId, _functions.DirectoryCache); // answered from the cache when it can
                break;
            default:
                Log.Warning("{0}: unexpected {1} from {2}; ignored", _identity.DeviceId, message.GetType().Name, senderId);
                break;
        }
    }

    /// <summary>
    /// A PNE's request for the server goes on in the PNE's own signed envelope, so a PN GW cannot make one up for a PNE;
    /// one that came in a session record (which only this PN GW could open) is refused.
    /// </summary>
    private void RelayToServer(SignedEnvelope? envelope, object message, string senderId, IActorRef? to)
    {
        if (envelope is null)
        {
            Log.Warning("{0}: {1} from {2} came in a session record; a request for the server must be signed end to end", _identity.DeviceId,
                message.GetType().Name, senderId);
            Sender.Tell(new EnvelopeRejected(EnvelopeRejection.Malformed, $"{message.GetType().Name} must come in the PNE's signed envelope"));
            return;
        }

        to?.Forward(envelope);
    }

    private void OnPneHello(AuthHello hello)
    {
        Admission.Arrived(hello.DeviceId);
        if (hello.Kind != EntityKind.Pne || !DeviceIds.IsValid(hello.DeviceId))
        {
            RejectPne(Sender, hello.DeviceId, RegistrationError.InvalidRequest, "a PNE authenticates as Pne with a valid id");
            return;
        }

        if (_pnTable.Screen(hello.DeviceId, hello.Keys, hello.Credential, Context.System.Scheduler.Now) is { } failure)
        {
            RejectPne(Sender, hello.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        if (!_ownRegistration.CanAdmit)
            _helloBacklog.Add((hello, Sender)); // challenged once this PN GW is registered itself
        else
            Challenge(hello, Sender);
    }

    private void Challenge(AuthHello hello, IActorRef replyTo) =>
        _link.Send(replyTo, PneChallenges.Issue(hello, _ownRegistration.Credential!, NowMs));

    private void OnRegisterPne(RegisterPne register)
    {
        if (PneChallenges.Take(register.DeviceId, register.Proof, register.Keys, NowMs) is null)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, "no open challenge matches this registration",
                AuthFailure.NoChallenge);
            return;
        }

        if (ChallengeBook.ProofProblem(AuthTranscripts.PneContext, register.DeviceId, _identity.DeviceId, register.Keys, register.Proof) is not null)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, "the PNE's proof does not verify",
                AuthFailure.BadSignature);
            return;
        }

        if (_pnTable.Screen(register.DeviceId, register.Keys, register.Credential, Context.System.Scheduler.Now) is { } failure)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        _link.Guard.Trust(register.DeviceId, register.Keys.Signing);
        _registrations.Wait(new PneRegistration(register.DeviceId, register.Keys, register.Credential, register.Proof,
            register.Capabilities, register.LifetimeSeconds, register.Endpoints, Moving: _moves.TakeBridged(register.DeviceId),
            Enrolment: register.Enrolment), Sender);
        // The SMF and CSKMF learn of the PNE at once, so a group notice naming it never arrives before it.
        TellFunctions(new PneAttached(register.DeviceId, register.Keys, register.Endpoints));

        if (_registrations.WaitingCount >= Settings.Registration.BatchMax || Settings.Registration.BatchWindow <= TimeSpan.Zero)
            Flush();
        else if (!Timers.IsTimerActive(FlushBatch.Instance))
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, Settings.Registration.BatchWindow);
    }

    private void RejectPne(IActorRef replyTo, string deviceId, RegistrationError error, string detail, AuthFailure? auth = null)
    {
        Log.Info("{0}: PNE {1} refused: {2}{3} ({4})", _identity.DeviceId, deviceId, error, auth is null ? "" : "/" + auth, detail);
        _link.Send(replyTo, new RegistrationRejected(deviceId, error, detail, auth));
    }

    // ---- Forwarding registrations to the server, in batches ----

    private void Flush()
    {
        Timers.Cancel(FlushBatch.Instance);
        if (_ownRegistration.Server is null || !_ownRegistration.IsRegistered || _registrations.WaitingCount == 0)
            return;
        if (_registrations.BusyForMs(NowMs) is > 0 and var wait)
        {
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, TimeSpan.FromMilliseconds(wait));
            return;
        }

        if (_registrations.NextBatch() is { } batch)
            SendBatch(batch.BatchId, batch.Pnes);
    }

    private void SendBatch(long batchId, List<PneRegistration> pnes)
    {
        _link.Send(_ownRegistration.Server!.Registry, new RegisterPnes(_identity.DeviceId, pnes));
        Timers.StartSingleTimer(("batch", batchId), new ResendBatch(batchId), _registrations.ReplyTimeout);
    }

    private void Resend(long batchId)
    {
        if (_registrations.TimedOut(batchId) is not { } pnes)
            return;
        Log.Warning("{0}: no answer to a batch of {1} PNE registrations; sending it again (waiting {2:0.#} s this time)",
            _identity.DeviceId, pnes.Count, _registrations.ReplyTimeout.TotalSeconds);
        SendBatch(batchId, pnes);
    }

    /// <summary>
    /// After this PN GW registered again (a restart, an expiry, a server restart), its whole PN is registered again
    /// in one batch, each PNE by its credential; the PNEs are told their new registrations.
    /// </summary>
    private void RegisterPnAgain()
    {
        var known = _pnTable.Pnes.Where(p => !_registrations.IsWaiting(p.DeviceId) && p.Credential is not null).ToList();
        if (known.Count == 0)
            return;
        foreach (var pne in known)
        {
            _registrations.Wait(pne with { Proof = null }, pne.Endpoints.Pne);
            _link.Guard.Trust(pne.DeviceId, pne.Keys.Signing);
            TellFunctions(new PneAttached(pne.DeviceId, pne.Keys, pne.Endpoints));
        }

        Log.Info("{0}: registering its PN of {1} PNEs again in one batch", _identity.DeviceId, known.Count);
        Flush();
    }

    private void OnPnesRegistered(PnesRegistered registered)
    {
        foreach (var batchId in _registrations.Answered(registered.Results.Select(r => r.DeviceId).ToHashSet(StringComparer.Ordinal)))
            Timers.Cancel(("batch", batchId));

        if (registered.Results.Any(r => r.Error == RegistrationError.Busy))
        {
            // The PNEs keep waiting (nothing was refused) and go again, in one batch, once the registry's wait is over.
            var wait = Backpressure.WaitFor(registered.RetryAfterMs);
            _registrations.BusyUntil(NowMs + (long)wait.TotalMilliseconds);
            Log.Info("{0}: the registry is busy; {1} PNE registrations go again in {2} ms", _identity.DeviceId,
                registered.Results.Count(r => r.Error == RegistrationError.Busy), wait.TotalMilliseconds);
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, wait);
            registered = registered with { Results = registered.Results.Where(r => r.Error != RegistrationError.Busy).ToList() };
        }

        var accepted = new List<(PneRegistration Registration, IActorRef ReplyTo, PneRegistrationResult Result)>();
        foreach (var result in registered.Results)
        {
            if (!_registrations.TakeWaiting(result.DeviceId, out var waiting))
                continue;
            if (result.Accepted)
            {
                accepted.Add((waiting.Registration with { Credential = result.Credential, Proof = null }, waiting.ReplyTo, result));
            }
            else
            {
                HandedOverRegistered(result.DeviceId);
                _link.Guard.Forget(result.DeviceId);
                _link.Send(waiting.ReplyTo,
                    new RegistrationRejected(result.DeviceId, result.Error!.Value, result.Detail ?? "", result.Auth));
                TellFunctions(new PneDetached(result.DeviceId));
            }
        }

        if (accepted.Count == 0)
            return;
        // The PN table is durable before any PNE hears it is registered.
        Persist(new PnTableJoinedEvent(accepted.Select(a => a.Registration with { Moving = false }).ToList()), e =>
        {
            Apply(e);
            foreach (var (_, replyTo, result) in accepted)
            {
                _registrations.Registered(result.DeviceId);
                HandedOverRegistered(result.DeviceId);
                Heard(result.DeviceId);
                _link.Send(replyTo, new PneRegistered(result.DeviceId, _identity.DeviceId, result.RegistrationId!,
                    result.LifetimeSeconds, result.Credential!, _identity.PublicKeys, Endpoints, _ownRegistration.ServerCredential!)
                {
                    Revocations = _pnTable.Notices.ToList(),
                });
            }

            SnapshotIfDue();
        });
    }

    private void Detach(string pneId)
    {
        _registrations.Unregistered(pneId);
        _pnLinks.Forget(pneId);
        _link.Guard.Forget(pneId);
        TellFunctions(new PneDetached(pneId));
        if (_pnTable.Contains(pneId))
            Persist(new PnTableLeftEvent(new[] { pneId }), Apply);
    }

    // ---- Reachability ----

    /// <summary>Any authenticated uplink makes a PNE of the PN (or one registering) reachable and awake again.</summary>
    private void Heard(string pneId)
    {
        if (_pnTable.Contains(pneId) || _registrations.IsWaiting(pneId))
            Announce(_pnLinks.Heard(pneId, NowMs));
    }

    private void CheckPnLinks()
    {
        var silentSince = NowMs - Settings.Connections.MissedHeartbeats * (long)Settings.Connections.HeartbeatInterval.TotalMilliseconds;
        foreach (var change in _pnLinks.Silent(silentSince))
            Announce(change);
    }

    private void Announce(PneReachability? change)
    {
        if (change is null)
            return;
        Log.Info("{0}: PNE {1} is {2}", _identity.DeviceId, change.DeviceId,
            change.Reachable ? "reachable" : change.Sleeping ? "asleep" : "unreachable");
        TellFunctions(change);
        Context.System.EventStream.Publish(change);
        // The server's status function hears it too (reachable is part of an entity's status).
        if (_ownRegistration.Server is { } server && _registrations.IsRegistered(change.DeviceId))
            _link.Send(server.Status, new ReachabilityReport(_identity.DeviceId, change.DeviceId, change.Reachable));
    }

    // ---- Moves between PNs and PN GW change ----

    /// <summary>A PNE from another PN asks to be taken in.</summary>
    private void OnBridgeRequest(BridgeRequest request)
    {
        var accepted = _moves.AcceptBridges && _ownRegistration.CanAdmit;
        var reason = accepted ? "" : _moves.AcceptBridges ? "this PN GW is not registered yet" : "this PN GW takes in no PNEs from other PNs";
        if (accepted)
            _moves.Bridged(request.DeviceId);
        Log.Info("{0}: bridge request of {1} from {2}: {3}", _identity.DeviceId, request.DeviceId, request.FromGatewayId,
            accepted ? "allowed" : "denied");
        _link.Send(Sender, new BridgeAnswer(request.DeviceId, _identity.DeviceId, _ownRegistration.Credential!, accepted, reason));
    }

    private void TakeOver(TakeOverPn takeOver)
    {
        if (!_ownRegistration.CanAdmit || _ownRegistration.Server is not { } server || _moves.Current is not null)
        {
            Sender.Tell(new HandoverResult(takeOver.OldGatewayId, _identity.DeviceId, false, 0,
                _moves.Current is not null ? "a takeover is already under way" : "this PN GW is not registered yet"));
            return;
        }

        // First the server's nonce for this takeover: the PNEs' consents sign it, and the server takes no other.
        _moves.Start(Sender, takeOver.OldGatewayId, takeOver.OldGateway);
        _link.Send(server.Registry, new MoveNonceRequest(_identity.DeviceId));
    }

    private void OnMoveNonce(MoveNonceIssued issued)
    {
        if (issued.GatewayId != _identity.DeviceId || _moves.NonceIssued(issued.Nonce) is not { } takeover)
            return;
        takeover.OldGateway.Tell(_link.Seal(new HandoverRequest(_identity.DeviceId, _ownRegistration.Credential!, Endpoints, issued.Nonce)), Self);
    }

    /// <summary>
    /// Another PN GW asks for this PN. If this PN GW agrees, every PNE is told its new home (signed by us, whom it
    /// trusts), then the new PN GW gets the PN table and registers the PNEs itself; this PN GW lets them go.
    /// </summary>
    private void OnHandoverRequest(HandoverRequest request)
    {
        if (!_moves.AgreeToHandover)
        {
            Log.Info("{0}: refused to hand its PN to {1}", _identity.DeviceId, request.NewGatewayId);
            _link.Send(Sender, new HandoverAnswer(_identity.DeviceId, _ownRegistration.Credential!, false, "this PN GW does not hand its PN over", []));
            return;
        }

        var pnes = _pnTable.Pnes.ToList();
        foreach (var pne in pnes)
            _link.Send(pne.Endpoints.Pne, new HomeChanged(pne.DeviceId, request.NewGatewayId, request.NewGatewayCredential,
                request.NewGateway, request.MoveNonce));
        _link.Send(Sender, new HandoverAnswer(_identity.DeviceId, _ownRegistration.Credential!, true, "", pnes));
        Log.Warning("{0}: handed its PN of {1} PNEs to {2}", _identity.DeviceId, pnes.Count, request.NewGatewayId);
        foreach (var pne in pnes)
            Detach(pne.DeviceId);
    }

    private void OnHandoverAnswer(HandoverAnswer answer)
    {
        if (_moves.Current is not { } takeover || takeover.OldGatewayId != answer.OldGatewayId)
            return;
        if (!answer.Accepted)
        {
            _moves.Finish();
            takeover.Asker.Tell(new HandoverResult(answer.OldGatewayId, _identity.DeviceId, false, 0, answer.Reason));
            return;
        }

        // Each PNE comes over only with its own signed consent (the old PN GW told it of the move); the server checks it.
        foreach (var early in _moves.HandedOver(answer.Pnes))
            OnMoveConsent(early);
        _moves.DropEarlyConsents();
        if (_moves.StillComing == 0)
            FinishTakeover();
        else if (_moves.AwaitingConsent > 0)
            Timers.StartSingleTimer(ConsentTimeout.Instance, ConsentTimeout.Instance, Settings.Security.AuthenticationTimeout);
    }

    /// <summary>A handed-over PNE's consent, checked here (its credential and signature) and again by the server.</summary>
    private void OnMoveConsent(MoveConsent consent)
    {
        if (!_moves.IsForCurrent(consent, _identity.DeviceId))
        {
            Log.Warning("{0}: a move consent of {1} for no takeover under way here; ignored", _identity.DeviceId, consent.DeviceId);
            return;
        }

        if (_moves.Consented(consent) is not { } pne)
            return; // it came before the old PN GW's answer

        if (!consent.VerifiedBy(pne.Keys.Signing))
        {
            Log.Warning("{0}: the move consent of {1} is not signed with its keys; it stays out", _identity.DeviceId, consent.DeviceId);
            _moves.StaysOut(consent.DeviceId);
        }
        else
        {
            _registrations.Wait(pne with { Proof = null, Moving = true, MoveConsent = consent }, pne.Endpoints.Pne);
            _link.Guard.Trust(pne.DeviceId, pne.Keys.Signing);
            TellFunctions(new PneAttached(pne.DeviceId, pne.Keys, pne.Endpoints));
        }

        // The PN comes over in one batch, as it was handed over: its groups rekey once, without the old PN GW.
        if (_moves.AwaitingConsent > 0)
            return;
        Timers.Cancel(ConsentTimeout.Instance);
        if (_moves.StillComing == 0)
            FinishTakeover();
        else
            Flush();
    }

    /// <summary>PNEs that never consented stay out; the takeover ends with those that did.</summary>
    private void OnConsentTimeout()
    {
        foreach (var missing in _moves.ConsentTimedOut())
            Log.Warning("{0}: {1} did not consent to the move in time; it stays out", _identity.DeviceId, missing);
        if (_moves.StillComing == 0)
            FinishTakeover();
        else
            Flush();
    }

    /// <summary>Called as the server answers the takeover's registrations; the asker hears once all are through.</summary>
    private void HandedOverRegistered(string deviceId)
    {
        if (_moves.ArrivedLast(deviceId))
            FinishTakeover();
    }

    private void FinishTakeover()
    {
        if (_moves.Finish() is not { } takeover)
            return;
        Log.Warning("{0}: took over the PN of {1}", _identity.DeviceId, takeover.OldGatewayId);
        takeover.Asker.Tell(new HandoverResult(takeover.OldGatewayId, _identity.DeviceId, true, _pnTable.Count, ""));
    }
}

/// <summary>The functions of a PN GW that its connections keep informed.</summary>
/// <param name="OwnPne">A BOTH device's own PNE role; none for a PN GW only.</param>
public sealed record GatewayFunctions(IActorRef Smf, IActorRef Cskmf, IActorRef Relay, IActorRef DirectoryCache, IActorRef Content,
    IActorRef? OwnPne = null)
{
    public IEnumerable<IActorRef> All => OwnPne is null ? [Smf, Cskmf, Relay, DirectoryCache, Content] : [Smf, Cskmf, Relay, DirectoryCache, Content, OwnPne];
}
