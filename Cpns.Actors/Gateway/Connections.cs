using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's connection management (<c>connections</c>). Towards the server (<c>Connections.Server.cs</c>) it
/// authenticates and registers, keeps the link alive with heartbeats, renews leases, and registers again — after a
/// jittered wait — when the server restarted or lost it. Towards its PN (<c>Connections.Pn.cs</c>) it is the
/// verifier of CPNS-1, keeps the PN table (durable, so a restarted PN GW registers its whole PN again as one batch),
/// and tracks which PNEs are reachable. It also relays its PNEs' signed service-group requests to the server.
/// </summary>
public sealed partial class Connections : CpnsPersistentActor, IWithTimers
{
    private readonly EntityIdentity _identity;
    private readonly CredentialVerifier _verifier;
    private readonly TrustAnchor _trustAnchor;
    private readonly ActorSelection _registry;
    private readonly GatewayFunctions _functions;
    private DeviceCapabilities _capabilities;
    private readonly int _lifetimeSeconds;
    private readonly SecureLink _link;

    private readonly string? _enrolmentToken;

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
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef registry, GatewayFunctions functions,
        DeviceCapabilities capabilities, int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken = null) =>
        Akka.Actor.Props.Create(typeof(Connections), identity, trustAnchor, registry, functions, capabilities, lifetimeSeconds, settings,
            enrolmentToken);

    private (Credential Credential, SecurityLevel? Ceiling)? _ownCeiling;

    /// <summary>This PN GW's answer to a PNE's scan; the ceiling is read from its credential once per credential.</summary>
    private GatewayAdvertisement Advertisement(string deviceId)
    {
        var registered = _registrationId is not null && _credential is not null;
        if (registered && _ownCeiling?.Credential != _credential)
            _ownCeiling = (_credential!, _verifier.Verify(_credential!, Context.System.Scheduler.Now).Credential?.PnSecurityCeiling);
        var now = NowMs;
        var retryAfterMs = registered && !_registeredPnes.Contains(deviceId)
            ? Admission.Answer(deviceId, RegistrationsInProgress, DispatcherLag.Of(Context.System).Current, now,
                now + (long)(Settings.Discovery.ScanWindow + Settings.Discovery.PlaceHeldAfterScan).TotalMilliseconds, Random.Shared)
            : 0;
        if (retryAfterMs > 0)
            CpnsMetrics.BusyAnswers.Add(1, CpnsMetrics.Tag("function", "pn-gw-admission"));
        return new GatewayAdvertisement(_identity.DeviceId, _identity.Kind, Context.Parent, registered, _pnTable.Count,
            PnSecurity.Held(_capabilities.PnSecurityLevel, registered ? _ownCeiling!.Value.Ceiling : null), registered && _acceptBridges,
            retryAfterMs);
    }

    /// <summary>What the PN GW's functions are all told (a PNE attached or left, the server, reachability).</summary>
    private void TellFunctions(object message)
    {
        foreach (var function in _functions.All)
            function.Tell(message);
    }

    public override string PersistenceId => $"gateway-{_identity.DeviceId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    private GatewayEndpoints Endpoints =>
        new(Context.Parent, Self, _functions.Smf, _functions.Cskmf, _functions.Relay, _functions.DirectoryCache, _functions.Content);

    protected override object CreateSnapshot() =>
        new PnTableSnapshot(_credential, _pnTable.Values.ToList(), _revokedDevices.ToList(), _revokedSerials.ToList(),
            _revocationNotices.Values.ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: PnTableSnapshot snapshot }:
                _credential = snapshot.Credential;
                _pnTable.Clear();
                foreach (var pne in snapshot.Pnes)
                    _pnTable[pne.DeviceId] = pne;
                foreach (var revoked in snapshot.RevokedDevices ?? [])
                    Apply(new RevocationLearned(revoked, []));
                _revokedSerials.UnionWith(snapshot.RevokedSerials ?? []);
                foreach (var notice in snapshot.RevocationNotices ?? [])
                    _revocationNotices[notice.DeviceId] = notice;
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
        switch (@event)
        {
            case GatewayCredentialStored stored:
                _credential = stored.Credential;
                break;
            case PnTableJoined joined:
                foreach (var pne in joined.Pnes)
                    _pnTable[pne.DeviceId] = pne;
                break;
            case PnTableLeft left:
                foreach (var id in left.DeviceIds)
                    _pnTable.Remove(id);
                break;
            case RevocationLearned revoked:
                _revokedDevices.Add(revoked.DeviceId);
                _revokedSerials.UnionWith(revoked.Serials);
                if (revoked.Notice is not null)
                    _revocationNotices[revoked.DeviceId] = revoked.Notice;
                _link.Guard.Revoke(revoked.DeviceId);
                break;
        }
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
                _acceptBridges = policy.AcceptBridges;
                _agreeToHandover = policy.AgreeToHandover;
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
                Sender.Tell(new KnownRevocations(_revokedDevices.Order(StringComparer.Ordinal).ToList(),
                    _revokedSerials.Order(StringComparer.Ordinal).ToList()));
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _registrationId is not null, _registrationId,
                    _registeredPnes.Count));
                break;
            case GetReachability query:
                Sender.Tell(_pnLinks.TryGetValue(query.DeviceId, out var link)
                    ? new Reachability(query.DeviceId, link.Reachable, link.Sleeping, link.LastSeenMs)
                    : new Reachability(query.DeviceId, false, false, 0));
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
        if (senderId == _serverId || message is AuthChallenge)
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
        BridgeRequest bridge => _verifier.Verify(bridge.Credential, Context.System.Scheduler.Now, _revokedSerials, bridge.DeviceId,
            EntityKind.Pne).Credential?.Keys.Signing,
        HandoverRequest handover => _verifier.Verify(handover.NewGatewayCredential, Context.System.Scheduler.Now, _revokedSerials,
            handover.NewGatewayId, EntityKind.PnGateway, EntityKind.Both).Credential?.Keys.Signing,
        MoveConsent consent => _verifier.Verify(consent.Credential, Context.System.Scheduler.Now, _revokedSerials, consent.DeviceId,
            EntityKind.Pne).Credential?.Keys.Signing,
        HandoverAnswer answer => _verifier.Verify(answer.OldGatewayCredential, Context.System.Scheduler.Now, _revokedSerials,
            answer.OldGatewayId, EntityKind.PnGateway, EntityKind.Both).Credential?.Keys.Signing,
        _ => null,
    };
}

/// <summary>The functions of a PN GW that its connections keep informed.</summary>
/// <param name="OwnPne">A BOTH device's own PNE role; none for a PN GW only.</param>
public sealed record GatewayFunctions(IActorRef Smf, IActorRef Cskmf, IActorRef Relay, IActorRef DirectoryCache, IActorRef Content,
    IActorRef? OwnPne = null)
{
    public IEnumerable<IActorRef> All => OwnPne is null ? [Smf, Cskmf, Relay, DirectoryCache, Content] : [Smf, Cskmf, Relay, DirectoryCache, Content, OwnPne];
}
