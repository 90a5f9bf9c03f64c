using Cpns.Actors.Common;
using Cpns.Actors.Local;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE entity (<c>pne-{id}</c>): parent of <c>cskmf</c> (with <c>seca</c>) and <c>smf</c>. It authenticates its PN
/// GW (mutual challenge–response on CPNS-1: the PN GW's credential must chain to the KMC root it was provisioned
/// with), registers through it, asking again with backoff until answered, and sends its own service-group
/// requests to the server signed, through the PN GW. It is in one of two states (<see cref="Unregistered"/>,
/// <see cref="Registered"/>); what the device's applications ask before it is registered gets a typed refusal.
/// </summary>
public sealed partial class PneEntity : UntypedActor, IWithTimers
{
    private sealed record RetryRegistration : INoSerializationVerificationNeeded
    {
        public static readonly RetryRegistration Instance = new();
    }

    private sealed record RenewLease : INoSerializationVerificationNeeded
    {
        public static readonly RenewLease Instance = new();
    }

    private sealed record Beat : INoSerializationVerificationNeeded
    {
        public static readonly Beat Instance = new();
    }

    private sealed record ScanEnds : INoSerializationVerificationNeeded
    {
        public static readonly ScanEnds Instance = new();
    }

    private sealed record ResendGroupRequest(string GroupId) : INoSerializationVerificationNeeded;

    private sealed record GroupRequestUnanswered(string GroupId) : INoSerializationVerificationNeeded;

    private readonly EntityIdentity _identity;
    private readonly CredentialVerifier _verifier;
    /// <summary>The PN GWs this device can reach: a scan asks each; the one it registered through is watched.</summary>
    private readonly List<IActorRef> _inReach;
    private readonly Dictionary<string, GatewayAdvertisement> _heard = new(StringComparer.Ordinal);
    private bool _scanning;
    private bool _scanWindowOver;
    private readonly HashSet<string> _failedGateways = new(StringComparer.Ordinal);
    private string? _lastTried;
    private IActorRef? _watchedGateway;
    /// <summary>The PN GW that went away while this PNE was registered through it: the server still places it there.</summary>
    private string? _lostGatewayId;
    private DeviceCapabilities _capabilities;
    private int _lifetimeSeconds;
    private TimeSpan _heartbeatInterval;
    // Built on the first device-management request: most PNEs never get one, and the tree is a kilobyte or two.
    private ManagementTree? _tree;
    private readonly CpnsSettings _settings;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly GroupRequests _groupRequests;
    private readonly ApplicationRequests _directoryRequests = new();

    /// <summary>Who among the device's applications asked to watch each target, and the latest status heard of each entity.</summary>
    private readonly Dictionary<string, IActorRef> _statusWatchers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EntityStatus> _watchedStatuses = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (IActorRef Asker, long TheirRequestId)> _dmAlerts = new();
    private long _nextRequestId;
    private PneRegistered? _registration;
    private Credential? _credential;
    private Octets? _clientNonce;
    private string? _serverId;
    private int _attempts;
    private bool _scanAfterBusy;
    private IActorRef? _deregistrationAsker;
    private (IActorRef Asker, IActorRef Target)? _move;
    private bool _asleep;

    private readonly string? _enrolmentToken;
    private readonly TrustAnchor _trustAnchor;
    private readonly IActorRef? _representedDevice;

    /// <summary>What the server's notices (checked against the server this PNE registered with) say is revoked.</summary>
    private readonly HashSet<string> _revokedSerials = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedDevices = new(StringComparer.Ordinal);
    private Octets? _serverSigningKey;

    public PneEntity(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef gateway, DeviceCapabilities capabilities,
        int lifetimeSeconds, CpnsSettings settings, string? enrolmentToken, IReadOnlyList<IActorRef> alsoInReach, IActorRef? representedDevice)
    {
        _representedDevice = representedDevice;
        _enrolmentToken = enrolmentToken;
        _identity = identity;
        _verifier = trustAnchor.Verifier();
        _trustAnchor = trustAnchor;
        _inReach = [gateway, ..alsoInReach.Where(g => !g.Equals(gateway)).Distinct()];
        _capabilities = capabilities;
        _lifetimeSeconds = lifetimeSeconds;
        _settings = settings;
        _groupRequests = new GroupRequests(settings.Load.MaxBusyAnswers);
        _link = new SecureLink(Context, identity, settings, _log);
        _heartbeatInterval = settings.Connections.HeartbeatInterval;
        _cskmf = Context.ActorOf(PneCskmf.Props(identity, settings), "cskmf");
        _smf = Context.ActorOf(PneSmf.Props(identity, _cskmf, settings), "smf");
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static string ActorName(string deviceId) => $"pne-{deviceId}";

    /// <param name="enrolmentToken">The one-time token the operator provisioned for this PNE (its first registration needs it).</param>
    /// <param name="alsoInReach">Other PN GWs the device can reach besides <paramref name="gateway"/>: it registers through
    /// the best of them (<see cref="GatewayChoice"/>) and through another when that one goes away.</param>
    /// <param name="representedDevice">For a PNE its PN GW runs on behalf of a device without CPNS features: that device,
    /// which gets what this PNE opens (<see cref="LegacyContent"/>).</param>
    public static Props Props(EntityIdentity identity, TrustAnchor trustAnchor, IActorRef gateway, CpnsSettings settings,
        DeviceCapabilities? capabilities = null, int lifetimeSeconds = 0, string? enrolmentToken = null,
        IReadOnlyList<IActorRef>? alsoInReach = null, IActorRef? representedDevice = null) =>
        Akka.Actor.Props.Create(typeof(PneEntity), identity, trustAnchor, gateway, capabilities ?? DeviceCapabilities.Pne(),
            lifetimeSeconds, settings, enrolmentToken, alsoInReach ?? Array.Empty<IActorRef>(), representedDevice)
            .WithMailbox(CompactMailbox.Id);

    protected override void PreStart() => Register();

    /// <summary>The registration lease is renewed at half its lifetime, through the PN GW (asked again if unanswered).</summary>
    private void ScheduleRenewal(int lifetimeSeconds, double fraction = 0.5) =>
        Timers.StartSingleTimer(RenewLease.Instance, RenewLease.Instance, TimeSpan.FromSeconds(lifetimeSeconds * fraction));

    /// <summary>What the device's own applications ask of it (the node-local API), registered: the PNE signs the request itself.</summary>
    private void OnApplicationRequest(ICpnsMessage request, PneRegistered registration)
    {
        var connections = registration.Gateway.Connections;
        switch (request)
        {
            case PublishStatus publish:
                _link.SendSigned(connections, publish with { DeviceId = _identity.DeviceId });
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege:
                SubmitGroupRequest((IWithGroupId)request);
                break;
            case SubscribeStatus subscribe:
                _statusWatchers[subscribe.Target] = Sender;
                _link.SendSigned(connections, subscribe with { WatcherId = _identity.DeviceId });
                break;
            case DmAlert alert:
                var alertId = ++_nextRequestId;
                _dmAlerts[alertId] = (Sender, alert.RequestId);
                _link.SendSigned(connections, alert with { DeviceId = _identity.DeviceId, RequestId = alertId });
                break;
            case UnsubscribeStatus unsubscribe:
                _statusWatchers.Remove(unsubscribe.Target);
                _link.SendSigned(connections, unsubscribe with { WatcherId = _identity.DeviceId });
                break;
            case PublishService or WithdrawService or NegotiateService:
                _directoryRequests.AwaitService(((IWithServiceId)request).ServiceId, Sender);
                _link.SendSigned(connections, request);
                break;
            case SearchServices search:
                _link.SendSigned(connections, _directoryRequests.AwaitSearch(search, _identity.DeviceId, Sender));
                break;
            default:
                Unhandled(request);
                break;
        }
    }

    /// <summary>What the device's applications ask before it is registered: each request gets its typed refusal.</summary>
    private void RefuseUnregistered(ICpnsMessage request)
    {
        var notYet = $"{_identity.DeviceId} is not registered yet";
        switch (request)
        {
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege:
                Sender.Tell(new GroupRejected(((IWithGroupId)request).GroupId, GroupError.NotAuthorized, notYet));
                break;
            case SubscribeStatus subscribe:
                Sender.Tell(new WatchRejected(_identity.DeviceId, subscribe.Target, GroupError.NotAuthorized, notYet));
                break;
            case DmAlert alert:
                Sender.Tell(new DmAlertAnswer(_identity.DeviceId, 0, false, notYet, alert.RequestId));
                break;
            case UnsubscribeStatus unsubscribe:
                _statusWatchers.Remove(unsubscribe.Target);
                break;
            case PublishService or WithdrawService or NegotiateService:
                Sender.Tell(new DirectoryRejected(((IWithServiceId)request).ServiceId, DirectoryError.NotAuthorized, notYet));
                break;
            case SearchServices search:
                Sender.Tell(new SearchRejected(search.ConsumerId, DirectoryError.NotAuthorized, notYet, search.RequestId));
                break;
            default:
                Unhandled(request);
                break;
        }
    }

    /// <summary>Sets the registration, and the state with it.</summary>
    private void SetRegistration(PneRegistered? registration)
    {
        _registration = registration;
        Become(registration is null ? Unregistered : Registered);
    }

    // Two states. Unregistered: scanning for a PN GW, authenticating with it, waiting for its answer — or deregistered on
    // purpose, staying away. Registered: through _registration's PN GW, with heartbeats, a lease and the applications'
    // requests. What either takes is in Either.
    protected override void OnReceive(object message) => Unregistered(message);

    private void Unregistered(object message)
    {
        switch (message)
        {
            case LocalRequest local:
                RefuseUnregistered(local.Request);
                break;
            case RetryRegistration:
                Register();
                break;
            case GatewayAdvertisement advertisement when _scanning:
                _log.Debug("{0}: discovered {1} ({2}, {3} PNEs, PN security {4})", _identity.DeviceId, advertisement.GatewayId,
                    advertisement.Mode, advertisement.Load, advertisement.PnSecurity);
                _heard[advertisement.GatewayId] = advertisement;
                if (_heard.Count >= _inReach.Count || _scanWindowOver)
                    Choose();
                break;
            case ScanEnds when _scanning && _heard.Count == 0:
                // PN GWs busy with a crowd of PNEs answer late, not never: the first answer decides.
                _scanWindowOver = true;
                break;
            case ScanEnds when _scanning:
                Choose();
                break;
            case MoveToGateway move:
                Sender.Tell(new BridgeAnswer(move.DeviceId, "", new Credential(Octets.Empty), false, $"{_identity.DeviceId} is not registered"));
                break;
            case DeregisterDevice:
                Sender.Tell(new RegistrationEnded(_identity.DeviceId, DeregistrationReason.Deregistered));
                break;
            case GatewayAdvertisement or ScanEnds or RenewLease or Beat:
                break; // late: an answer to a scan already decided, a lease or heartbeat of a registration that ended
            default:
                Either(message);
                break;
        }
    }

    private void Registered(object message)
    {
        var registration = _registration!;
        switch (message)
        {
            case LocalRequest local:
                OnApplicationRequest(local.Request, registration);
                break;
            case RenewLease:
                _link.Send(registration.Gateway.Connections, new RefreshLease(_identity.DeviceId, _lifetimeSeconds));
                ScheduleRenewal(registration.LifetimeSeconds, 0.125);
                break;
            case Beat:
                if (!_asleep)
                    _link.Send(registration.Gateway.Connections, new Heartbeat(_identity.DeviceId, CapabilityHash.Of(_capabilities)));
                break;
            case Sleep sleep:
                _asleep = true;
                if (sleep.Announce)
                    _link.Send(registration.Gateway.Connections, new GoingToSleep(_identity.DeviceId));
                break;
            case MoveToGateway move:
                _move = (Sender, move.TargetGateway);
                move.TargetGateway.Tell(_link.Seal(new BridgeRequest(_identity.DeviceId, _credential!, registration.GatewayId)), Self);
                break;
            case DeregisterDevice:
                _deregistrationAsker = Sender;
                _link.Send(registration.Gateway.Connections, new Deregister(_identity.DeviceId));
                break;
            case RetryRegistration or GatewayAdvertisement or ScanEnds:
                break; // a retry or a scan's answer from before the registration
            default:
                Either(message);
                break;
        }
    }

    private void Either(object message)
    {
        switch (message)
        {
            case SiblingsWanted when Sender.Equals(_cskmf):
                Sender.Tell(new SiblingIs("smf", _smf));
                break;
            // What the device's own applications ask of it comes through the node-local API only (LocalRequest, above): the
            // same records arriving bare (from another process) are not its applications' words.
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege or PublishService or WithdrawService
                or NegotiateService or SearchServices or PublishStatus or SubscribeStatus or UnsubscribeStatus or DmAlert:
                _link.CountRefusal("BareRequest");
                _log.Warning("pne {0}: refused a bare {1}: requests of the device's applications come through its node-local API",
                    _identity.DeviceId, message.GetType().Name);
                break;
            case ISecureWire wire:
                if (_link.TryOpenSelfSigned(wire, SigningKeyIn, out var inner, out var senderId))
                    OnSigned(inner, senderId);
                break;
            case ResendGroupRequest resend:
                SendGroupRequest(resend.GroupId);
                break;
            case GroupRequestUnanswered unanswered:
                _log.Warning("{0}: no answer to its request on {1} within {2}", _identity.DeviceId, unanswered.GroupId, _settings.Timeouts.Ask);
                GroupRequestAnswered(unanswered.GroupId, new GroupRejected(unanswered.GroupId, GroupError.TimedOut,
                    $"the server did not answer within {_settings.Timeouts.Ask.TotalSeconds:0.#} s"));
                break;
            case Terminated gone when gone.ActorRef.Equals(_watchedGateway):
                OnGatewayGone(gone.ActorRef);
                break;
            case Terminated:
                break; // a PN GW this PNE no longer uses
            case UpdateCapabilities update:
                _capabilities = update.Capabilities;
                Self.Tell(Beat.Instance); // the new hash goes out at once
                break;
            case Wake:
                _asleep = false;
                Self.Tell(Beat.Instance);
                break;
            case SendContent or GetReceivedContent:
                OnContent(message);
                break;
            case Continuation next:
                next.Then();
                break;
            case GetKnownRevocations:
                Sender.Tell(new KnownRevocations(_revokedDevices.Order(StringComparer.Ordinal).ToList(),
                    _revokedSerials.Order(StringComparer.Ordinal).ToList()));
                break;
            case GetWatchedStatuses:
                Sender.Tell(new WatchedStatuses(_watchedStatuses.Values.OrderBy(s => s.DeviceId, StringComparer.Ordinal).ToList()));
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _registration is not null, _registration?.RegistrationId, 0));
                break;
            case GetLocalGroups:
                _smf.Forward(message);
                break;
            case GetKeyState or ExportGroupKey or EncryptContent or DecryptContent:
                _cskmf.Forward(message);
                break;
            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>The PN GW's challenge names the key it signs with through its credential, checked against the KMC root.</summary>
    private Octets? SigningKeyIn(object message) => message switch
    {
        AuthChallenge challenge => GatewayKey(challenge.VerifierCredential, challenge.VerifierId),
        BridgeAnswer answer => GatewayKey(answer.GatewayCredential, answer.GatewayId),
        _ => null,
    };

    private Octets? GatewayKey(Credential credential, string gatewayId)
    {
        var check = _verifier.Verify(credential, Context.System.Scheduler.Now, _revokedSerials, gatewayId, EntityKind.PnGateway,
            EntityKind.Both);
        if (check.Error != CredentialError.Revoked)
            return check.Credential?.Keys.Signing;
        _link.CountRefusal("GatewayRevoked");
        _log.Warning("{0}: {1} is revoked ({2}); nothing it says is taken", _identity.DeviceId, gatewayId, check.Detail);
        if (_move is { } move)
        {
            _move = null;
            move.Asker.Tell(new BridgeAnswer(_identity.DeviceId, gatewayId, credential, false, $"{gatewayId} is revoked"));
        }

        return null;
    }

    /// <summary>A revocation the server signed, passed on by the PN GW (or carried in the registration answer).</summary>
    private void Learn(RevocationNotice notice)
    {
        if (_serverId is null || _serverSigningKey is null || !notice.VerifiedBy(_serverId, _serverSigningKey))
        {
            _link.CountRefusal("RevocationNotVouched");
            _log.Warning("{0}: a revocation of {1} not signed by the server {2}; ignored", _identity.DeviceId, notice.DeviceId,
                _serverId ?? "(none yet)");
            return;
        }

        _revokedDevices.Add(notice.DeviceId);
        _revokedSerials.UnionWith(notice.Serials);
    }

    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case AuthChallenge challenge when challenge.VerifierId == senderId:
                OnChallenge(challenge);
                break;
            case PneRegistered registered when registered.GatewayId == senderId:
                OnRegistered(registered);
                break;
            case RegistrationRejected rejected when rejected.DeviceId == _identity.DeviceId:
                _log.Warning("{0}: registration refused: {1}{2} ({3})", _identity.DeviceId, rejected.Error,
                    rejected.Auth is null ? "" : "/" + rejected.Auth, rejected.Detail);
                break;
            case LeaseRenewed renewed when senderId == _registration?.GatewayId:
                if (renewed.Renewed)
                {
                    _registration = _registration with { LifetimeSeconds = renewed.LifetimeSeconds };
                    ScheduleRenewal(renewed.LifetimeSeconds);
                }
                else
                    EndRegistration(DeregistrationReason.Expired);
                break;
            case RegistrationEnded { Reason: DeregistrationReason.Moved }:
                break; // the old PN GW letting go after a move
            case RegistrationEnded ended when senderId == _registration?.GatewayId:
                EndRegistration(ended.Reason);
                break;
            case BridgeAnswer answer when answer.GatewayId == senderId && _move is { } move:
                _move = null;
                move.Asker.Tell(answer);
                if (answer.Accepted)
                {
                    // Into the new PN: the usual challenge–response with the PN GW that agreed.
                    _link.Guard.Trust(answer.GatewayId, _link.Guard.LastSelfSignedKey!);
                    SendHello(move.Target);
                }

                break;
            case RevocationNotice notice when senderId == _registration?.GatewayId:
                Learn(notice);
                break;
            case HomeChanged home when senderId == _registration?.GatewayId && home.DeviceId == _identity.DeviceId:
                OnHomeChanged(home);
                break;
            case CapabilityQuery query when senderId == _registration?.GatewayId && query.DeviceId == _identity.DeviceId:
                _link.Send(Sender, new CapabilityReport(query.RequestId, _identity.DeviceId, CapabilityHash.Of(_capabilities),
                    _capabilities, FromCache: false));
                break;
            case DmRequest request when senderId == _registration?.GatewayId && request.DeviceId == _identity.DeviceId:
                var (status, value, detail) = (_tree ??= ManagementTreeOf(_identity)).Apply(request.Operation, request.Path, request.Value);
                _link.Send(Sender, new DmResponse(request.RequestId, _identity.DeviceId, status, value, detail));
                break;
            case ServicePublished or ServiceWithdrawn or DirectoryRejected or ServicePlan or ServiceRefused when senderId == _serverId:
                _directoryRequests.AnswerService((IWithServiceId)message);
                break;
            case DmAlertAnswer answer when senderId == _serverId && answer.DeviceId == _identity.DeviceId &&
                                           _dmAlerts.Remove(answer.RequestId, out var alerted):
                alerted.Asker.Tell(answer with { RequestId = alerted.TheirRequestId });
                break;
            case WatchAccepted accepted when senderId == _serverId && accepted.WatcherId == _identity.DeviceId:
                foreach (var heard in accepted.Current)
                    _watchedStatuses[heard.DeviceId] = heard;
                _statusWatchers.GetValueOrDefault(accepted.Target)?.Tell(accepted);
                break;
            case WatchRejected rejected when senderId == _serverId && rejected.WatcherId == _identity.DeviceId:
                if (_statusWatchers.Remove(rejected.Target, out var refusedWatcher))
                    refusedWatcher.Tell(rejected);
                break;
            case StatusChanged changed when senderId == _serverId && changed.WatcherId == _identity.DeviceId:
                _watchedStatuses[changed.Status.DeviceId] = changed.Status;
                foreach (var application in _statusWatchers.Values.Distinct())
                    application.Tell(changed);
                break;
            case SearchResult or SearchRejected when senderId == _registration?.GatewayId && _directoryRequests.AnswerSearch(message):
                break;
            case ContentForPne content when senderId == _registration?.GatewayId:
                Open(content);
                break;
            case ContentAccepted or ContentRejected when senderId == _serverId || senderId == _registration?.GatewayId:
                AnswerSender(message);
                break;
            case GroupRejected { Error: GroupError.Busy } busy when senderId == _serverId && _groupRequests.Busy(busy.GroupId):
                _log.Info("{0}: the server is busy ({1}); its request on {2} goes again in {3} ms", _identity.DeviceId, busy.Detail,
                    busy.GroupId, busy.RetryAfterMs);
                Timers.StartSingleTimer(("group", busy.GroupId), new ResendGroupRequest(busy.GroupId),
                    Backpressure.WaitFor(busy.RetryAfterMs));
                break;
            case GroupAccepted or GroupRejected when senderId == _serverId:
                GroupRequestAnswered(((IWithGroupId)message).GroupId, message);
                break;
            default:
                _log.Warning("{0}: unexpected signed {1} from {2}", _identity.DeviceId, message.GetType().Name, senderId);
                break;
        }
    }

    /// <summary>
    /// Discovery first: a scan of every PN GW within reach, answered with advertisements. Then the challenge–response with
    /// the best of them, or, for a PNE whose PN GW went away, a bridge request to it (the server moves the PNE only on the
    /// new PN GW's consent and the PNE's fresh proof). An attempt that ends in no registration puts its PN GW last next time.
    /// </summary>
    private void Register()
    {
        // A scan that heard only busy PN GWs was no failed attempt: the next one waits no longer for it.
        if (!_scanAfterBusy)
            _attempts++;
        _scanAfterBusy = false;
        if (_lastTried is not null)
            _failedGateways.Add(_lastTried);
        _lastTried = null;
        _heard.Clear();
        _scanning = true;
        _scanWindowOver = false;
        foreach (var gateway in _inReach)
            gateway.Tell(new DiscoverGateways(_identity.DeviceId));
        Timers.StartSingleTimer(ScanEnds.Instance, ScanEnds.Instance, _settings.Discovery.ScanWindow);
        // A PNE's registration waits on its PN GW's with the server, so it is given five times as long.
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance,
            _settings.Registration.Backoff.Times(5).Delay(_attempts));
    }

    private void Choose()
    {
        _scanning = false;
        Timers.Cancel(ScanEnds.Instance);
        var moving = _lostGatewayId is not null && _credential is not null;
        var ranked = GatewayChoice.Rank(_identity.DeviceId, _heard.Values, moving, _failedGateways);
        if (ranked.Count == 0 && _heard.Values.Where(a => a.AcceptsNewPnes && a.Busy).Select(a => a.RetryAfterMs).DefaultIfEmpty()
                .Min() is > 0 and var retryAfterMs)
        {
            _log.Debug("{0}: every PN GW that takes it in is busy; scanning again in {1} ms", _identity.DeviceId, retryAfterMs);
            _scanAfterBusy = true;
            Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, Backpressure.WaitFor(retryAfterMs));
            return;
        }

        if (ranked.Count == 0)
        {
            // Asked again at the next attempt: a PN GW not registered yet says it cannot take PNEs in.
            _log.Debug("{0}: none of the {1} PN GWs that answered ({2} within reach) takes it in yet", _identity.DeviceId, _heard.Count,
                _inReach.Count);
            return;
        }

        var chosen = ranked[0];
        _lastTried = chosen.GatewayId;
        if (moving && chosen.GatewayId != _lostGatewayId)
        {
            _log.Info("{0}: {1} went away; asking {2} to take it in", _identity.DeviceId, _lostGatewayId, chosen.GatewayId);
            _move = (ActorRefs.Nobody, chosen.Gateway);
            chosen.Gateway.Tell(_link.Seal(new BridgeRequest(_identity.DeviceId, _credential!, _lostGatewayId!)), Self);
        }
        else
            SendHello(chosen.Gateway);
    }

    /// <summary>The PN GW this PNE was registered through went away (its actor or its node): find another in reach.</summary>
    private void OnGatewayGone(IActorRef gateway)
    {
        _inReach.Remove(gateway);
        _watchedGateway = null;
        if (_registration is null)
            return;
        _log.Info("{0}: its PN GW {1} went away; scanning {2} other PN GWs within reach", _identity.DeviceId, _registration.GatewayId,
            _inReach.Count);
        _lostGatewayId = _registration.GatewayId;
        SetRegistration(null);
        Timers.Cancel(RenewLease.Instance);
        Timers.Cancel(Beat.Instance);
        _attempts = 0;
        Register();
    }

    /// <summary>The PN GW this PNE is registered through, watched so that its loss is noticed.</summary>
    private void Attach(IActorRef gateway)
    {
        if (!_inReach.Contains(gateway))
            _inReach.Add(gateway);
        if (gateway.Equals(_watchedGateway))
            return;
        if (_watchedGateway is not null)
            Context.Unwatch(_watchedGateway);
        _watchedGateway = gateway;
        Context.Watch(gateway);
    }

    private void SendHello(IActorRef gateway)
    {
        _clientNonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _link.Send(gateway, new AuthHello(_identity.DeviceId, EntityKind.Pne, _identity.PublicKeys, _credential, _clientNonce,
            AuthTranscripts.PneContext));
    }

    private void OnChallenge(AuthChallenge challenge)
    {
        if (challenge.ClientNonce != _clientNonce || challenge.DeviceId != _identity.DeviceId)
            return;
        var gatewayKey = _link.Guard.LastSelfSignedKey!; // from its credential, checked while opening
        // The server checks the proof: bound to the PN GW's nonce and our keys, so the PN GW cannot use it for anything else.
        if (ChallengeClaimant.Answer(AuthTranscripts.PneContext, _identity, challenge, gatewayKey, _credential, _enrolmentToken) is not
            { } answer)
        {
            _log.Warning("{0}: the PN GW's challenge signature does not verify; not registering with it", _identity.DeviceId);
            return;
        }

        _link.Guard.Trust(challenge.VerifierId, gatewayKey);
        // To whoever challenged: the PN GW we are moving to, or ours.
        _link.Send(Sender, new RegisterPne(_identity.DeviceId, _identity.PublicKeys, _credential, answer.Proof, _capabilities,
            _lifetimeSeconds, new PneEndpoints(Self, _smf, _cskmf), answer.Enrolment));
    }

    private void OnRegistered(PneRegistered registered)
    {
        var server = _verifier.Verify(registered.ServerCredential, Context.System.Scheduler.Now, null, null, EntityKind.Server);
        var problem = server.Valid ? _trustAnchor.PinProblem(server.Credential!.DeviceId, server.Credential.Keys.Signing) : server.Detail;
        if (problem is not null)
        {
            _log.Warning("{0}: the server credential relayed by {1} does not check out: {2}", _identity.DeviceId, registered.GatewayId,
                problem);
            return;
        }

        Timers.Cancel(RetryRegistration.Instance);
        Timers.Cancel(ScanEnds.Instance);
        _scanning = false;
        SetRegistration(registered);
        _lostGatewayId = null;
        _lastTried = null;
        _failedGateways.Clear();
        Attach(registered.Gateway.Gateway);
        ScheduleRenewal(registered.LifetimeSeconds);
        Timers.StartPeriodicTimer(Beat.Instance, Beat.Instance, _heartbeatInterval);
        _credential = registered.Credential;
        _serverId = server.Credential!.DeviceId;
        _serverSigningKey = server.Credential.Keys.Signing;
        _link.Guard.Trust(_serverId, server.Credential.Keys.Signing);
        foreach (var notice in registered.Revocations)
            Learn(notice);
        if (_statusWatchers.Count > 0)
        {
            // Registered again (the server restarted, say): status is soft state there, so what this device was told is
            // stale and its subscriptions are gone. It subscribes again; its applications hear the statuses as they are.
            _watchedStatuses.Clear();
            foreach (var target in _statusWatchers.Keys)
                _link.SendSigned(registered.Gateway.Connections, new SubscribeStatus(_identity.DeviceId, target));
        }
        var attached = new GatewayAttached(registered.GatewayId, registered.GatewayKeys, registered.Gateway, _serverId,
            server.Credential.Keys);
        _cskmf.Tell(attached);
        _smf.Tell(attached);
        Context.System.EventStream.Publish(new EntityRegistered(_identity.DeviceId, EntityKind.Pne, registered.RegistrationId));
    }

    /// <summary>
    /// Our PN GW handed its PN to another: the new PN GW's credential must check out; it registers us itself, and
    /// we take its word (and its keys) from now on.
    /// </summary>
    private void OnHomeChanged(HomeChanged home)
    {
        if (GatewayKey(home.NewGatewayCredential, home.NewGatewayId) is not { } key)
        {
            _log.Warning("{0}: told to move to {1}, whose credential does not check out; staying", _identity.DeviceId,
                home.NewGatewayId);
            return;
        }

        _log.Info("{0}: its PN is now served by {1}", _identity.DeviceId, home.NewGatewayId);
        _link.Guard.Trust(home.NewGatewayId, key);
        Attach(home.NewGateway.Gateway);
        // The device's own word that it goes along: the server moves it only with this.
        if (_credential is not null && _registration is not null)
            _link.SendSigned(home.NewGateway.Connections, MoveConsent.Sign(_identity, _credential, _registration.GatewayId, home.NewGatewayId,
                home.MoveNonce, Context.System.Scheduler.Now.ToUnixTimeMilliseconds()));
    }

    /// <summary>The device's management tree: what the server's DM may read, change and run through the PN GW.</summary>
    private ManagementTree ManagementTreeOf(EntityIdentity identity) => new ManagementTree()
        .Leaf("./DevInfo/Id", () => identity.DeviceId)
        .Leaf("./DevInfo/Man", () => "CPNS on Akka.NET")
        .Leaf("./DevInfo/Mod", () => _capabilities.DeviceKind)
        .Leaf("./DevInfo/FwV", () => typeof(PneEntity).Assembly.GetName().Version?.ToString() ?? "1.0")
        .Leaf("./CPNS/Gateway", () => _registration?.GatewayId ?? "")
        .Leaf("./CPNS/RegistrationId", () => _registration?.RegistrationId ?? "")
        .Setting("./CPNS/Lifetime", () => (_lifetimeSeconds > 0 ? _lifetimeSeconds : _registration?.LifetimeSeconds ?? 0).ToString(), value =>
        {
            if (!int.TryParse(value, out var seconds) || seconds <= 0)
                return "a lifetime is a positive number of seconds";
            // The new lifetime takes effect at once: the lease is renewed with it (the server clamps it).
            _lifetimeSeconds = seconds;
            Self.Tell(RenewLease.Instance);
            return null;
        })
        .Setting("./CPNS/Heartbeat", () => ((int)_heartbeatInterval.TotalSeconds).ToString(), value =>
        {
            if (!int.TryParse(value, out var seconds) || seconds is < 1 or > 3600)
                return "a heartbeat interval is 1 to 3600 seconds";
            _heartbeatInterval = TimeSpan.FromSeconds(seconds);
            if (_registration is not null)
                Timers.StartPeriodicTimer(Beat.Instance, Beat.Instance, _heartbeatInterval);
            return null;
        })
        .Command("./CPNS/Reregister", () =>
        {
            SetRegistration(null);
            _attempts = 0;
            Register();
            return null;
        });

    /// <summary>
    /// The registration ended: deregistered on purpose (it stays away), or expired (it registers again, which the
    /// server answers with a new registration id).
    /// </summary>
    private void EndRegistration(DeregistrationReason reason)
    {
        _log.Info("{0}: registration ended ({1})", _identity.DeviceId, reason);
        SetRegistration(null);
        Timers.Cancel(RenewLease.Instance);
        Timers.Cancel(Beat.Instance);
        if (reason == DeregistrationReason.Deregistered)
        {
            _deregistrationAsker?.Tell(new RegistrationEnded(_identity.DeviceId, reason));
            _deregistrationAsker = null;
            return;
        }

        _attempts = 0;
        Register();
    }

    /// <summary>The PNE's own request, signed, relayed by its PN GW to the server's SMF; the answer comes back signed.</summary>
    private void SubmitGroupRequest(IWithGroupId request)
    {
        if (_groupRequests.Add(request.GroupId, (ICpnsMessage)request, Sender))
            SendGroupRequest(request.GroupId);
    }

    private void SendGroupRequest(string groupId)
    {
        if (_groupRequests.Out(groupId) is not { } request)
            return;
        if (_registration is null)
        {
            GroupRequestAnswered(groupId, new GroupRejected(groupId, GroupError.NotAuthorized, $"{_identity.DeviceId} is not registered now"));
            return;
        }

        _link.SendSigned(_registration.Gateway.Connections, request);
        // One timer per group: the wait for this answer, or after a busy answer the wait before sending again.
        Timers.StartSingleTimer(("group", groupId), new GroupRequestUnanswered(groupId), _settings.Timeouts.Ask);
    }

    private void GroupRequestAnswered(string groupId, object answer)
    {
        Timers.Cancel(("group", groupId));
        var (asker, next) = _groupRequests.Answered(groupId);
        asker?.Tell(answer);
        if (next is not null)
            SendGroupRequest(groupId);
    }
}
