using Cpns.Actors.Common;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's PN inventory and the verifier of CPNS-2/3/4: a PN GW authenticates with mutual challenge–response
/// (its credential, or first its key, checked; the server's credential shown back), the KMC issues credentials to
/// entities that have none, and registrations are persisted before they are acknowledged — a PN GW's batch of
/// PNE registrations as one event. Registration ids come from a persisted counter and are never reused.
/// </summary>
public sealed class ServerRegistry : CpnsPersistentActor, IWithTimers
{
    /// <summary>Makes the endpoints the registry hands out, once it knows its own reference.</summary>
    public delegate ServerEndpoints ServerEndpointsFactory(IActorRef registry);


    /// <summary>Registrations waiting for the KMC's credentials.</summary>
    private sealed record AwaitingCredentials(
        IActorRef ReplyTo,
        GatewayRecord? Gateway,
        string? GatewayId,
        List<PneRecord> Pnes,
        List<PneRegistrationResult> Results,
        Dictionary<string, Credential> Presented);

    private readonly ServerEndpointsFactory _endpoints;
    private readonly IReadOnlyList<IActorRef> _placementSubscribers;
    private readonly IActorRef _kmc;
    private readonly Credential _serverCredential;
    private readonly CredentialVerifier _verifier;
    private readonly SecureLink _link;
    private readonly Dictionary<string, GatewayRecord> _gateways = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PneRecord> _pnes = new(StringComparer.Ordinal);
    private readonly Dictionary<Octets, long> _usedConsents = new();
    private readonly Dictionary<Octets, (string GatewayId, long ExpiresMs)> _moveNonces = new();
    private readonly HashSet<string> _revokedDevices = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedSerials = new(StringComparer.Ordinal);
    // Every id ever registered, with its keys (registered now or not): the binding outlives the lease.
    private readonly Dictionary<string, PublicKeys> _boundKeys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeviceProvision> _provisioned = new(StringComparer.Ordinal);
    private readonly ChallengeBook _challenges;
    private readonly Dictionary<long, AwaitingCredentials> _awaiting = new();
    private readonly SortedSet<(long ExpiresAtMs, string DeviceId)> _leases = new(LeaseOrder.Instance);
    private long _lastRegistrationNumber;
    private long _nextRequestId;

    // A new id each time the registry starts: a PN GW that sees it change knows the server restarted.
    private readonly string _bootId = Guid.NewGuid().ToString("N");

    /// <param name="placementSubscribers">The server functions that must know where every entity is (SMF, CSKMF, ...).</param>
    public ServerRegistry(ServerEndpointsFactory endpoints, IReadOnlyList<IActorRef> placementSubscribers, IActorRef kmc,
        EntityIdentity identity, Credential serverCredential, TrustAnchor trustAnchor, CpnsSettings settings) : base(settings)
    {
        _endpoints = endpoints;
        _placementSubscribers = placementSubscribers;
        _kmc = kmc;
        _serverCredential = serverCredential;
        _verifier = trustAnchor.Verifier();
        _link = new SecureLink(Context, identity, settings, Log);
        _challenges = new ChallengeBook(identity, AuthTranscripts.GatewayContext, settings.Security.AuthenticationTimeout);
        _backpressure = new Backpressure(Self, settings.Load.BusyMailboxDepth, "registry");
    }

    private readonly Backpressure _backpressure;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record SweepLeases : INoSerializationVerificationNeeded
    {
        public static readonly SweepLeases Instance = new();
    }

    private sealed class LeaseOrder : IComparer<(long ExpiresAtMs, string DeviceId)>
    {
        public static readonly LeaseOrder Instance = new();

        public int Compare((long ExpiresAtMs, string DeviceId) x, (long ExpiresAtMs, string DeviceId) y)
        {
            var byTime = x.ExpiresAtMs.CompareTo(y.ExpiresAtMs);
            return byTime != 0 ? byTime : string.CompareOrdinal(x.DeviceId, y.DeviceId);
        }
    }

    public static Props Props(ServerEndpointsFactory endpoints, IReadOnlyList<IActorRef> placementSubscribers, IActorRef kmc,
        EntityIdentity identity, Credential serverCredential, TrustAnchor trustAnchor, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerRegistry>(endpoints, placementSubscribers, kmc, identity, serverCredential, trustAnchor, settings);

    private void TellPlacement(object placement)
    {
        foreach (var subscriber in _placementSubscribers)
            subscriber.Tell(placement);
    }

    public override string PersistenceId => $"registry-{Settings.ServerId}";

    private string ServerId => _link.Identity.DeviceId;

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override object CreateSnapshot() => new RegistrySnapshot(_gateways.Values.ToList(), _pnes.Values.ToList(),
        _lastRegistrationNumber, _revokedDevices.ToList(), _revokedSerials.ToList(),
        _boundKeys.Select(kv => new BoundKeys(kv.Key, kv.Value)).ToList(), _provisioned.Values.ToList());

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: RegistrySnapshot snapshot }:
                _gateways.Clear();
                _pnes.Clear();
                _leases.Clear();
                foreach (var gateway in snapshot.Gateways)
                    Put(gateway);
                foreach (var pne in snapshot.Pnes)
                    Put(pne);
                _lastRegistrationNumber = snapshot.LastRegistrationNumber;
                _revokedDevices.UnionWith(snapshot.RevokedDevices);
                _revokedSerials.UnionWith(snapshot.RevokedSerials);
                foreach (var bound in snapshot.Bound ?? [])
                    _boundKeys[bound.DeviceId] = bound.Keys;
                foreach (var provisioned in snapshot.Provisioned ?? [])
                    _provisioned[provisioned.DeviceId] = provisioned;
                break;
            case ICpnsEvent @event:
                Apply(@event);
                break;
            case RecoveryCompleted:
                Timers.StartPeriodicTimer(SweepLeases.Instance, SweepLeases.Instance, Settings.Registration.CleanerInterval);
                foreach (var gateway in _gateways.Values)
                    Place(gateway);
                foreach (var byGateway in _pnes.Values.GroupBy(p => p.GatewayId))
                    Place(byGateway.Key, byGateway.ToList());
                break;
        }
    }

    private void Apply(ICpnsEvent @event)
    {
        switch (@event)
        {
            case GatewayRegisteredEvent registered:
                Put(registered.Gateway);
                _lastRegistrationNumber = Math.Max(_lastRegistrationNumber, registered.RegistrationNumber);
                break;
            case PnesRegisteredEvent registered:
                foreach (var pne in registered.Pnes)
                    Put(pne);
                _lastRegistrationNumber = Math.Max(_lastRegistrationNumber, registered.LastRegistrationNumber);
                break;
            case LeasesRefreshedEvent refreshed:
                foreach (var refresh in refreshed.Refreshes)
                {
                    if (_gateways.TryGetValue(refresh.DeviceId, out var gateway))
                        Put(gateway with { LifetimeSeconds = refresh.LifetimeSeconds, LeaseStartMs = refreshed.AtMs });
                    else if (_pnes.TryGetValue(refresh.DeviceId, out var pne))
                        Put(pne with { LifetimeSeconds = refresh.LifetimeSeconds, LeaseStartMs = refreshed.AtMs });
                }

                break;
            case EntitiesDeregisteredEvent deregistered:
                foreach (var id in deregistered.DeviceIds)
                    Remove(id);
                break;
            case GatewayCapabilitiesChangedEvent changed when _gateways.TryGetValue(changed.GatewayId, out var changedGateway):
                Put(changedGateway with { Capabilities = changed.Capabilities });
                break;
            case DevicesProvisionedEvent provisioned:
                foreach (var device in provisioned.Devices)
                    _provisioned[device.DeviceId] = device;
                break;
            case CredentialRevokedEvent revoked:
                _revokedDevices.Add(revoked.DeviceId);
                _revokedSerials.UnionWith(revoked.Serials);
                Remove(revoked.DeviceId);
                foreach (var orphan in _pnes.Values.Where(p => p.GatewayId == revoked.DeviceId).ToList())
                    Remove(orphan.DeviceId);
                break;
        }
    }

    private void Put(GatewayRecord gateway)
    {
        _boundKeys[gateway.GatewayId] = gateway.Keys;
        _provisioned.Remove(gateway.GatewayId);
        if (_gateways.TryGetValue(gateway.GatewayId, out var old))
            _leases.Remove((old.ExpiresAtMs, old.GatewayId));
        else
            CpnsMetrics.LeasesChanged(gateways: true, 1);
        _gateways[gateway.GatewayId] = gateway;
        _leases.Add((gateway.ExpiresAtMs, gateway.GatewayId));
    }

    private void Put(PneRecord pne)
    {
        _boundKeys[pne.DeviceId] = pne.Keys;
        _provisioned.Remove(pne.DeviceId);
        if (_pnes.TryGetValue(pne.DeviceId, out var old))
            _leases.Remove((old.ExpiresAtMs, old.DeviceId));
        else
            CpnsMetrics.LeasesChanged(gateways: false, 1);
        _pnes[pne.DeviceId] = pne;
        _leases.Add((pne.ExpiresAtMs, pne.DeviceId));
    }

    private void Remove(string deviceId)
    {
        if (_gateways.Remove(deviceId, out var gateway))
        {
            _leases.Remove((gateway.ExpiresAtMs, deviceId));
            CpnsMetrics.LeasesChanged(gateways: true, -1);
        }

        if (_pnes.Remove(deviceId, out var pne))
        {
            _leases.Remove((pne.ExpiresAtMs, deviceId));
            CpnsMetrics.LeasesChanged(gateways: false, -1);
        }
    }

    private static readonly KeyValuePair<string, object?> GatewayKind = CpnsMetrics.Tag("kind", "pn-gateway");
    private static readonly KeyValuePair<string, object?> PneKind = CpnsMetrics.Tag("kind", "pne");

    protected override void PostStop()
    {
        // The leases this registry held are no longer held by this process.
        CpnsMetrics.LeasesChanged(gateways: true, -_gateways.Count);
        CpnsMetrics.LeasesChanged(gateways: false, -_pnes.Count);
        base.PostStop();
    }

    /// <summary>The SMF and CSKMF learn where an entity is and which key signs its messages.</summary>
    private void Place(GatewayRecord gateway)
    {
        _link.Guard.Trust(gateway.GatewayId, gateway.Keys.Signing);
        TellPlacement(new GatewayPlaced(gateway.GatewayId, gateway.Kind, gateway.Keys, gateway.HeldPnSecurityLevel(),
            gateway.Endpoints));
    }

    /// <summary>
    /// A PN GW's new capabilities are kept, and every function holds its PN to the security level they give from now on:
    /// the SMF rekeys the groups whose requirement the PN now meets or no longer meets.
    /// </summary>
    private void OnGatewayCapabilities(GatewayCapabilitiesChanged changed, IActorRef replyTo)
    {
        var before = _gateways[changed.GatewayId].HeldPnSecurityLevel();
        Persist(new GatewayCapabilitiesChangedEvent(changed.GatewayId, changed.Capabilities), e =>
        {
            Apply(e);
            var gateway = _gateways[e.GatewayId];
            var held = gateway.HeldPnSecurityLevel();
            if (held < gateway.Capabilities.PnSecurityLevel)
                Log.Warning("{0} declares a PN of {1} security; its credential allows at most {2}", e.GatewayId,
                    gateway.Capabilities.PnSecurityLevel, held);
            if (held != before)
                Log.Info("the PN of {0} is now held to {1} security (was {2})", e.GatewayId, held, before);
            Place(gateway);
            _link.Send(replyTo, new GatewayCapabilitiesAccepted(e.GatewayId, held));
            SnapshotIfDue();
        });
    }

    private void Place(string gatewayId, IReadOnlyList<PneRecord> pnes)
    {
        TellPlacement(new PnesPlaced(gatewayId, pnes.Select(p => new PlacedPne(p.DeviceId, p.Keys)).ToList()));
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case ISecureWire wire:
                if (_link.TryOpenSelfSigned(wire, SigningKeyIn, out var inner, out var senderId))
                    OnAuthenticated(inner, senderId);
                break;
            case CredentialsIssued issued:
                OnCredentialsIssued(issued);
                break;
            case SweepLeases:
                Sweep();
                break;
            case GetLease query:
                var record = _gateways.TryGetValue(query.DeviceId, out var g)
                    ? new Lease(g.GatewayId, true, g.RegistrationId, g.LifetimeSeconds, g.ExpiresAtMs)
                    : _pnes.TryGetValue(query.DeviceId, out var p)
                        ? new Lease(p.DeviceId, true, p.RegistrationId, p.LifetimeSeconds, p.ExpiresAtMs)
                        : new Lease(query.DeviceId, false, null, 0, 0);
                Sender.Tell(record);
                break;
            case RevokeCredential revoke:
                OnRevoke(revoke);
                break;
            case ProvisionDevices provision:
                OnProvision(provision);
                break;
            case AuthHello or RegisterGateway or RegisterPnes:
                var deviceId = ((message as IWithDeviceId)?.DeviceId ?? (message as IWithGatewayId)?.GatewayId)!;
                Reject(Sender, deviceId, RegistrationError.AuthenticationFailed, "registrations must come in a signed envelope",
                    AuthFailure.BadSignature);
                break;
            case GetInventory:
                Sender.Tell(new Inventory(
                    _gateways.Values.OrderBy(g => g.GatewayId, StringComparer.Ordinal)
                        .Select(g => new InventoryEntry(g.GatewayId, g.Kind, g.GatewayId, g.RegistrationId)).ToList(),
                    _pnes.Values.OrderBy(p => p.DeviceId, StringComparer.Ordinal)
                        .Select(p => new InventoryEntry(p.DeviceId, EntityKind.Pne, p.GatewayId, p.RegistrationId)).ToList()));
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

    /// <summary>A hello or a PN GW's registration carries the key its envelope is signed with; that proof is checked below.</summary>
    private static Octets? SigningKeyIn(object message) => message switch
    {
        AuthHello hello => hello.Keys.Signing,
        RegisterGateway register => register.Keys.Signing,
        _ => null,
    };

    private void OnAuthenticated(object message, string senderId)
    {
        switch (message)
        {
            // Behind: the costly work is turned away (a challenge, then the proof and a credential; every PNE's proof and
            // credential); leases, heartbeats and deregistrations are cheap and are kept up.
            case AuthHello hello when hello.DeviceId == senderId && _backpressure.Backlog() is > 0 and var backlog:
                var busyHello = _backpressure.TurnAway(backlog);
                _link.Send(Sender, new RegistrationRejected(hello.DeviceId, RegistrationError.Busy, busyHello.Detail,
                    RetryAfterMs: busyHello.RetryAfterMs));
                break;
            case RegisterPnes batch when batch.GatewayId == senderId && _gateways.ContainsKey(senderId) &&
                                         _backpressure.Backlog() is > 0 and var backlog:
                var busyBatch = _backpressure.TurnAway(backlog);
                _link.Send(Sender, new PnesRegistered(batch.GatewayId, batch.Pnes
                    .Select(p => new PneRegistrationResult(p.DeviceId, null, 0, null, RegistrationError.Busy, null, busyBatch.Detail))
                    .ToList(), busyBatch.RetryAfterMs));
                break;
            case AuthHello hello when hello.DeviceId == senderId:
                OnHello(hello);
                break;
            case RegisterGateway register when register.GatewayId == senderId:
                OnRegisterGateway(register);
                break;
            case RegisterPnes batch when batch.GatewayId == senderId && _gateways.ContainsKey(senderId):
                OnRegisterPnes(batch);
                break;
            case GatewayCapabilitiesChanged changed when changed.GatewayId == senderId && _gateways.ContainsKey(senderId):
                OnGatewayCapabilities(changed, Sender);
                break;
            case Heartbeat heartbeat when heartbeat.DeviceId == senderId && _gateways.ContainsKey(senderId):
                _link.Send(Sender, new HeartbeatAck(ServerId, _bootId));
                break;
            case RefreshRegistrations refresh when refresh.GatewayId == senderId && _gateways.ContainsKey(senderId):
                OnRefresh(refresh);
                break;
            case DeregisterEntities deregister when deregister.GatewayId == senderId && _gateways.ContainsKey(senderId):
                OnDeregister(deregister);
                break;
            case MoveNonceRequest request when request.GatewayId == senderId && _gateways.ContainsKey(senderId):
                foreach (var (old, _) in _moveNonces.Where(kv => kv.Value.ExpiresMs < NowMs).ToList())
                    _moveNonces.Remove(old);
                var nonce = Octets.Own(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
                _moveNonces[nonce] = (senderId, NowMs + 2 * (long)Settings.Security.AuthenticationTimeout.TotalMilliseconds);
                _link.Send(Sender, new MoveNonceIssued(senderId, nonce));
                break;
            case RegisterPnes batch:
                _link.Send(Sender, new PnesRegistered(batch.GatewayId, batch.Pnes
                    .Select(p => new PneRegistrationResult(p.DeviceId, null, 0, null, RegistrationError.UnknownGateway, null,
                        $"PN GW {batch.GatewayId} is not registered"))
                    .ToList()));
                break;
            default:
                _link.CountRefusal("SenderMismatch");
                Log.Warning("registry: {0} from {1} does not match its sender; ignored", message.GetType().Name, senderId);
                break;
        }
    }

    private void OnHello(AuthHello hello)
    {
        if (!DeviceIds.IsValid(hello.DeviceId) || hello.Kind is not (EntityKind.PnGateway or EntityKind.Both))
        {
            Reject(Sender, hello.DeviceId, RegistrationError.InvalidRequest, "a PN GW authenticates with a valid id as PnGateway or Both");
            return;
        }

        if ((Screen(hello.DeviceId, hello.Keys, hello.Credential, EntityKind.PnGateway, EntityKind.Both) ??
             ScreenEnrolment(hello.DeviceId, hello.Kind, hello.Keys, hello.Credential, null)) is { } failure)
        {
            Reject(Sender, hello.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        _link.Send(Sender, _challenges.Issue(hello, _serverCredential, NowMs));
    }

    private void OnRegisterGateway(RegisterGateway register)
    {
        // An answer to an older challenge (the PN GW said hello twice) is refused and leaves the open one open.
        if (_challenges.Take(register.GatewayId, register.Proof, register.Keys, NowMs) is not { } hello)
        {
            Reject(Sender, register.GatewayId, RegistrationError.AuthenticationFailed, "no open challenge matches this registration",
                AuthFailure.NoChallenge);
            return;
        }

        // The kind enrolled is the kind that said hello (a PN GW or a BOTH device): never what the registration asks for
        // afterwards, so no registration gets a credential of another kind (a Server one least of all).
        if (register.Kind != hello.Kind)
        {
            Reject(Sender, register.GatewayId, RegistrationError.InvalidRequest,
                $"{register.GatewayId} said hello as {hello.Kind} and registers as {register.Kind}");
            return;
        }

        if (ChallengeBook.ProofProblem(AuthTranscripts.GatewayContext, register.GatewayId, ServerId, register.Keys, register.Proof) is { } badProof)
        {
            Reject(Sender, register.GatewayId, RegistrationError.AuthenticationFailed, badProof, AuthFailure.BadSignature);
            return;
        }

        if ((Screen(register.GatewayId, register.Keys, register.Credential, EntityKind.PnGateway, EntityKind.Both) ??
             ScreenEnrolment(register.GatewayId, register.Kind, register.Keys, register.Credential,
                 new EnrolmentCheck(register.Enrolment, AuthTranscripts.GatewayContext, ServerId, register.Proof.VerifierNonce))) is { } failure)
        {
            Reject(Sender, register.GatewayId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        if (_pnes.ContainsKey(register.GatewayId))
        {
            Reject(Sender, register.GatewayId, RegistrationError.DuplicateDevice, $"{register.GatewayId} is registered as a PNE");
            return;
        }

        var record = new GatewayRecord(register.GatewayId, register.Kind, register.Keys, register.Capabilities, "",
            register.Endpoints, "", Settings.ClampLifetime(register.LifetimeSeconds), NowMs);
        var presented = new Dictionary<string, Credential>(StringComparer.Ordinal);
        if (register.Credential is not null)
            presented[register.GatewayId] = register.Credential;
        RequestCredentials(new AwaitingCredentials(Sender, record, null, [], [], presented),
            register.Credential is null
                ? [new CredentialRequest(register.GatewayId, register.Kind, register.Keys,
                    _provisioned.GetValueOrDefault(register.GatewayId)?.PnSecurityCeiling)]
                : []);
    }

    private void OnRegisterPnes(RegisterPnes batch)
    {
        var results = new List<PneRegistrationResult>();
        var accepted = new List<PneRecord>();
        var requests = new List<CredentialRequest>();
        var presented = new Dictionary<string, Credential>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pne in batch.Pnes)
        {
            string? problem = null;
            AuthFailure? auth = null;
            var error = RegistrationError.InvalidRequest;
            if (!DeviceIds.IsValid(pne.DeviceId) || pne.Keys.Signing.Length != 32 || pne.Keys.Agreement.Length != 32)
                problem = "a PNE needs a valid id and a 32-byte Ed25519 and X25519 key";
            else if (_gateways.ContainsKey(pne.DeviceId))
                problem = $"{pne.DeviceId} is registered as a PN GW";
            else if (!seen.Add(pne.DeviceId))
                problem = $"{pne.DeviceId} appears twice in one batch";
            else if (_pnes.TryGetValue(pne.DeviceId, out var current) && current.GatewayId != batch.GatewayId && !pne.Moving)
            {
                (problem, error) = ($"{pne.DeviceId} is registered through {current.GatewayId}; moving it needs the new PN GW's consent",
                    RegistrationError.WrongGateway);
            }
            else if (_pnes.TryGetValue(pne.DeviceId, out var moving) && moving.GatewayId != batch.GatewayId && pne.Proof is null &&
                     MoveProblem(pne, moving, batch.GatewayId) is { } moveProblem)
            {
                (problem, auth, error) = (moveProblem, AuthFailure.BadSignature, RegistrationError.AuthenticationFailed);
            }
            else if (pne.Proof is null && pne.Credential is null)
            {
                (problem, auth, error) = ("a PNE registered again by its PN GW must present its credential", AuthFailure.NoChallenge,
                    RegistrationError.AuthenticationFailed);
            }
            else if (pne.Proof is not null && ChallengeBook.ProofProblem(AuthTranscripts.PneContext, pne.DeviceId, batch.GatewayId, pne.Keys, pne.Proof) is { } badProof)
            {
                (problem, auth, error) = (badProof, AuthFailure.BadSignature, RegistrationError.AuthenticationFailed);
            }
            else if ((Screen(pne.DeviceId, pne.Keys, pne.Credential, EntityKind.Pne) ??
                      ScreenEnrolment(pne.DeviceId, EntityKind.Pne, pne.Keys, pne.Credential,
                          pne.Proof is null ? null : new EnrolmentCheck(pne.Enrolment, AuthTranscripts.PneContext, batch.GatewayId, pne.Proof.VerifierNonce)))
                     is { } failure)
            {
                (problem, auth, error) = (failure.Detail, failure.Failure, RegistrationError.AuthenticationFailed);
            }

            if (problem is not null)
            {
                Log.Info("registration of PNE {0} via {1} refused: {2}", pne.DeviceId, batch.GatewayId, problem);
                CountRefusal(error, auth);
                results.Add(new PneRegistrationResult(pne.DeviceId, null, 0, null, error, auth, problem));
                continue;
            }

            accepted.Add(new PneRecord(pne.DeviceId, batch.GatewayId, pne.Keys, pne.Capabilities, "", pne.Endpoints, "",
                Settings.ClampLifetime(pne.LifetimeSeconds), NowMs));
            if (pne.Credential is null)
                requests.Add(new CredentialRequest(pne.DeviceId, EntityKind.Pne, pne.Keys));
            else
                presented[pne.DeviceId] = pne.Credential;
        }

        RequestCredentials(new AwaitingCredentials(Sender, null, batch.GatewayId, accepted, results, presented), requests);
    }

    /// <summary>
    /// Why a PNE registered through another PN GW than its own, without its fresh challenge proof, may not move: it must
    /// have signed its consent to exactly this move (from its PN GW to this one) with the keys its id is bound to, over a
    /// nonce this server issued to the new PN GW, lately, and once (a credential alone is public, so it proves nothing).
    /// </summary>
    private string? MoveProblem(PneRegistration pne, PneRecord current, string toGatewayId)
    {
        if (pne.MoveConsent is not { } consent)
            return $"{pne.DeviceId} is registered through {current.GatewayId}; a move needs the PNE's own proof or consent";
        if (consent.DeviceId != pne.DeviceId || consent.FromGatewayId != current.GatewayId || consent.ToGatewayId != toGatewayId)
            return $"the consent of {pne.DeviceId} is for another move";
        if (Math.Abs(NowMs - consent.TimestampMs) > Settings.Security.EnvelopeMaxSkew.TotalMilliseconds)
            return $"the consent of {pne.DeviceId} is stale";
        if (!consent.VerifiedBy(current.Keys.Signing))
            return $"the consent of {pne.DeviceId} is not signed with its keys";
        if (!_moveNonces.TryGetValue(consent.Nonce, out var issued) || issued.GatewayId != toGatewayId || issued.ExpiresMs < NowMs)
            return $"the consent of {pne.DeviceId} does not sign a nonce this server issued to {toGatewayId}";
        foreach (var (signature, expires) in _usedConsents.Where(kv => kv.Value < NowMs).ToList())
            _usedConsents.Remove(signature);
        return _usedConsents.TryAdd(consent.Signature, NowMs + (long)Settings.Security.EnvelopeMaxSkew.TotalMilliseconds * 2)
            ? null
            : $"the consent of {pne.DeviceId} was used before";
    }

    private void RequestCredentials(AwaitingCredentials awaiting, IReadOnlyList<CredentialRequest> requests)
    {
        var requestId = ++_nextRequestId;
        _awaiting[requestId] = awaiting;
        if (requests.Count == 0)
            OnCredentialsIssued(new CredentialsIssued(requestId, []));
        else
            _kmc.Tell(new IssueCredentials(requestId, requests));
    }

    private void OnCredentialsIssued(CredentialsIssued issued)
    {
        if (!_awaiting.Remove(issued.RequestId, out var awaiting))
            return;
        var credentials = new Dictionary<string, (Credential Credential, string Serial)>(StringComparer.Ordinal);
        foreach (var (deviceId, credential) in awaiting.Presented)
            credentials[deviceId] = (credential, _verifier.Verify(credential, Context.System.Scheduler.Now).Credential?.Serial ?? "");
        foreach (var credential in issued.Credentials)
            credentials[credential.DeviceId] = (credential.Credential, credential.Serial);

        if (awaiting.Gateway is { } gateway)
        {
            var number = _lastRegistrationNumber + 1;
            var (credential, serial) = credentials[gateway.GatewayId];
            var record = gateway with
            {
                RegistrationId = RegistrationId(number),
                CredentialSerial = serial,
                PnSecurityCeiling = _verifier.Verify(credential, Context.System.Scheduler.Now).Credential?.PnSecurityCeiling,
            };
            if (record.HeldPnSecurityLevel() < record.Capabilities.PnSecurityLevel)
                Log.Warning("{0} declares a PN of {1} security; its credential allows at most {2}, and the server holds it to that",
                    record.GatewayId, record.Capabilities.PnSecurityLevel, record.HeldPnSecurityLevel());
            Persist(new GatewayRegisteredEvent(record, number), e =>
            {
                Apply(e);
                CpnsMetrics.Registrations.Add(1, GatewayKind);
                Place(record);
                _link.Send(awaiting.ReplyTo, new GatewayRegistered(record.GatewayId, record.RegistrationId, record.LifetimeSeconds,
                    credential, _endpoints(Self), _bootId));
                SnapshotIfDue();
            });
            return;
        }

        var gatewayId = awaiting.GatewayId!;
        if (awaiting.Pnes.Count == 0)
        {
            _link.Send(awaiting.ReplyTo, new PnesRegistered(gatewayId, awaiting.Results));
            return;
        }

        var movedFrom = awaiting.Pnes
            .Where(p => _pnes.TryGetValue(p.DeviceId, out var before) && before.GatewayId != gatewayId)
            .ToDictionary(p => p.DeviceId, p => _pnes[p.DeviceId].GatewayId);
        var last = _lastRegistrationNumber;
        var records = awaiting.Pnes
            .Select(p => p with { RegistrationId = RegistrationId(++last), CredentialSerial = credentials[p.DeviceId].Serial })
            .ToList();
        Persist(new PnesRegisteredEvent(gatewayId, records, last), e =>
        {
            Apply(e);
            CpnsMetrics.Registrations.Add(e.Pnes.Count, PneKind);
            Place(gatewayId, records);
            Context.System.EventStream.Publish(new PneBatchRegistered(gatewayId, records.Count, NowMs));
            // A PNE that moved: its old PN GW lets go of it, and its groups follow it (they rekey without the old route).
            foreach (var (deviceId, from) in movedFrom)
            {
                var moved = new PneMoved(deviceId, from, gatewayId);
                TellPlacement(moved);
                Context.System.EventStream.Publish(moved);
                if (_gateways.TryGetValue(from, out var oldGateway))
                    _link.Send(oldGateway.Endpoints.Connections, new RegistrationsEnded([deviceId], DeregistrationReason.Moved));
            }
            var results = awaiting.Results.Concat(records.Select(r => new PneRegistrationResult(r.DeviceId, r.RegistrationId,
                r.LifetimeSeconds, credentials[r.DeviceId].Credential, null, null, null))).ToList();
            _link.Send(awaiting.ReplyTo, new PnesRegistered(gatewayId, results));
            SnapshotIfDue();
        });
    }

    /// <summary>A PN GW's own lease and its PNEs' are renewed together, each with its (clamped) lifetime.</summary>
    private void OnRefresh(RefreshRegistrations refresh)
    {
        var now = NowMs;
        var renewed = new List<LeaseRefresh>();
        var results = new List<RefreshResult>();
        foreach (var lease in refresh.Refreshes)
        {
            var known = lease.DeviceId == refresh.GatewayId ||
                        (_pnes.TryGetValue(lease.DeviceId, out var pne) && pne.GatewayId == refresh.GatewayId);
            var lifetime = Settings.ClampLifetime(lease.LifetimeSeconds);
            if (known)
                renewed.Add(new LeaseRefresh(lease.DeviceId, lifetime));
            results.Add(new RefreshResult(lease.DeviceId, known, known ? lifetime : 0, known ? now + lifetime * 1000L : 0));
        }

        var replyTo = Sender;
        if (renewed.Count == 0)
        {
            _link.Send(replyTo, new RegistrationsRefreshed(refresh.GatewayId, results));
            return;
        }

        Persist(new LeasesRefreshedEvent(renewed, now), e =>
        {
            Apply(e);
            _link.Send(replyTo, new RegistrationsRefreshed(refresh.GatewayId, results));
            SnapshotIfDue();
        });
    }

    private void OnDeregister(DeregisterEntities deregister)
    {
        var ids = deregister.DeviceIds
            .Where(id => id == deregister.GatewayId || (_pnes.TryGetValue(id, out var pne) && pne.GatewayId == deregister.GatewayId))
            .Distinct(StringComparer.Ordinal).ToList();
        // A PN GW that leaves takes its PN with it.
        if (ids.Contains(deregister.GatewayId))
            ids.AddRange(_pnes.Values.Where(p => p.GatewayId == deregister.GatewayId).Select(p => p.DeviceId).Except(ids));
        var replyTo = Sender;
        if (ids.Count == 0)
        {
            _link.Send(replyTo, new RegistrationsEnded([], DeregistrationReason.Deregistered));
            return;
        }

        EndRegistrations(ids, DeregistrationReason.Deregistered, () =>
            _link.Send(replyTo, new RegistrationsEnded(ids, DeregistrationReason.Deregistered)));
    }

    /// <summary>
    /// The lease cleaner: each pass removes at most a bounded number of expired registrations (a PN GW's with its
    /// PNEs), oldest first, so a million leases never make one long pause.
    /// </summary>
    private void Sweep()
    {
        var now = NowMs;
        var expired = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (expiresAtMs, deviceId) in _leases)
        {
            if (expiresAtMs > now || expired.Count >= Settings.Registration.CleanerBatch)
                break;
            if (!seen.Add(deviceId))
                continue;
            expired.Add(deviceId);
            if (_gateways.ContainsKey(deviceId))
            {
                foreach (var pne in _pnes.Values.Where(p => p.GatewayId == deviceId && seen.Add(p.DeviceId)))
                    expired.Add(pne.DeviceId);
            }
        }

        if (expired.Count == 0)
            return;
        Log.Info("lease cleaner: {0} registrations expired", expired.Count);
        var tellGateways = expired.Where(_pnes.ContainsKey).GroupBy(id => _pnes[id].GatewayId)
            .Where(g => _gateways.ContainsKey(g.Key) && !expired.Contains(g.Key))
            .ToDictionary(g => g.Key, g => g.ToList());
        EndRegistrations(expired, DeregistrationReason.Expired, () =>
        {
            foreach (var (gatewayId, pnes) in tellGateways)
                _link.Send(_gateways[gatewayId].Endpoints.Connections, new RegistrationsEnded(pnes, DeregistrationReason.Expired));
        });
    }

    private void EndRegistrations(IReadOnlyList<string> ids, DeregistrationReason reason, Action then)
    {
        var endpointsOfGateways = ids.Where(_gateways.ContainsKey).ToDictionary(id => id, id => _gateways[id].Endpoints);
        Persist(new EntitiesDeregisteredEvent(ids, reason), e =>
        {
            Apply(e);
            foreach (var id in e.DeviceIds)
                _link.Guard.Forget(id);
            TellPlacement(new EntitiesRemoved(e.DeviceIds, Revoked: false));
            Context.System.EventStream.Publish(new EntitiesDeregistered(e.DeviceIds, e.Reason));
            // A PN GW whose own lease ran out hears it too, so it can register again.
            if (reason == DeregistrationReason.Expired)
                foreach (var (id, endpoints) in endpointsOfGateways)
                    _link.Send(endpoints.Connections, new RegistrationsEnded([id], reason));
            then();
            SnapshotIfDue();
        });
    }

    private void OnRevoke(RevokeCredential revoke)
    {
        var serials = new List<string>();
        if (_gateways.TryGetValue(revoke.DeviceId, out var gateway) && gateway.CredentialSerial.Length > 0)
            serials.Add(gateway.CredentialSerial);
        if (_pnes.TryGetValue(revoke.DeviceId, out var pne) && pne.CredentialSerial.Length > 0)
            serials.Add(pne.CredentialSerial);
        var orphans = _pnes.Values.Where(p => p.GatewayId == revoke.DeviceId).Select(p => p.DeviceId).ToList();
        var replyTo = Sender;
        Persist(new CredentialRevokedEvent(revoke.DeviceId, serials, revoke.Reason), e =>
        {
            Apply(e);
            _link.Guard.Revoke(e.DeviceId);
            TellPlacement(new EntitiesRemoved([e.DeviceId, .. orphans], Revoked: true));
            var notice = RevocationNotice.Sign(_link.Identity, e.DeviceId, e.Serials, NowMs);
            foreach (var other in _gateways.Values)
                _link.Send(other.Endpoints.Connections, new CredentialRevoked(e.DeviceId, e.Serials, notice));
            Log.Warning("credentials of {0} revoked ({1}); {2} PNEs behind it deregistered", e.DeviceId, e.Reason, orphans.Count);
            replyTo.Tell(new CredentialRevocationAccepted(e.DeviceId, e.Serials));
            SnapshotIfDue();
        });
    }

    private sealed record Screening(AuthFailure Failure, string Detail);

    /// <summary>
    /// Revocation, the keys the id is bound to, then the credential if one is shown (chain to the KMC root, validity,
    /// kind, subject, and that it binds the keys in use).
    /// </summary>
    private Screening? Screen(string deviceId, PublicKeys keys, Credential? credential, params EntityKind[] kinds)
    {
        if (_revokedDevices.Contains(deviceId))
            return new Screening(AuthFailure.Revoked, $"{deviceId} is revoked");
        // An id stays bound to the keys it first registered with, after its lease ends too: nobody else enrols under it,
        // with or without a credential the KMC once issued.
        if (_boundKeys.TryGetValue(deviceId, out var bound) && bound != keys)
            return new Screening(AuthFailure.KeyMismatch, $"{deviceId} is bound to other keys");
        if (credential is not null)
        {
            var check = _verifier.Verify(credential, Context.System.Scheduler.Now, _revokedSerials, deviceId, kinds);
            if (!check.Valid)
                return new Screening(AuthTranscripts.FromCredentialError(check.Error!.Value), check.Detail!);
            if (check.Credential!.Keys != keys)
                return new Screening(AuthFailure.KeyMismatch, $"the credential of {deviceId} binds other keys");
        }

        return null;
    }

    /// <summary>The proof of a provisioned token a first registration carries, and what it must be bound to.</summary>
    private sealed record EnrolmentCheck(Octets? Proof, string Context, string VerifierId, Octets VerifierNonce);

    /// <summary>
    /// A first enrolment (no credential, an id not bound to keys yet) needs what the operator provisioned for this id:
    /// an unexpired entry of the same kind, and — once the verifier's nonce is known — the token's proof over it.
    /// </summary>
    private Screening? ScreenEnrolment(string deviceId, EntityKind kind, PublicKeys keys, Credential? credential, EnrolmentCheck? check)
    {
        if (credential is not null || _boundKeys.ContainsKey(deviceId))
            return null;
        if (!_provisioned.TryGetValue(deviceId, out var provision) || provision.ExpiresAtMs < NowMs)
            return new Screening(AuthFailure.NotProvisioned, $"{deviceId} is not provisioned for enrolment (or its token expired)");
        if (provision.Kind != kind)
            return new Screening(AuthFailure.WrongKind, $"{deviceId} is provisioned as {provision.Kind}, not {kind}");
        if (check is not null &&
            !Enrolment.Verify(provision.EnrolmentKey, check.Proof, check.Context, deviceId, kind, keys, check.VerifierId, check.VerifierNonce))
            return new Screening(AuthFailure.NotProvisioned, $"the enrolment proof of {deviceId} is missing or does not verify");
        return null;
    }

    private void OnProvision(ProvisionDevices provision)
    {
        var accepted = new List<DeviceProvision>();
        var acceptedIds = new HashSet<string>(StringComparer.Ordinal);
        var refused = new List<ProvisioningRefusal>();
        foreach (var device in provision.Devices)
        {
            var problem = !DeviceIds.IsValid(device.DeviceId) ? "not a valid device id"
                : device.Kind is not (EntityKind.PnGateway or EntityKind.Both or EntityKind.Pne) ? $"a {device.Kind} is never enrolled"
                : device.EnrolmentKey.Length != 32 ? "an enrolment key is 32 bytes"
                : _revokedDevices.Contains(device.DeviceId) ? "the id is revoked"
                : _boundKeys.ContainsKey(device.DeviceId) ? "the id is enrolled already (bound to its keys for good)"
                : acceptedIds.Contains(device.DeviceId) ? "the id appears twice"
                : null;
            if (problem is null)
            {
                acceptedIds.Add(device.DeviceId);
                accepted.Add(device);
            }
            else
                refused.Add(new ProvisioningRefusal(device.DeviceId, problem));
        }

        var replyTo = Sender;
        if (accepted.Count == 0)
        {
            replyTo.Tell(new DevicesProvisioned([], refused));
            return;
        }

        Persist(new DevicesProvisionedEvent(accepted), e =>
        {
            Apply(e);
            Log.Info("{0} devices provisioned for enrolment, {1} refused", e.Devices.Count, refused.Count);
            replyTo.Tell(new DevicesProvisioned(e.Devices.Select(d => d.DeviceId).ToList(), refused));
            SnapshotIfDue();
        });
    }

    private static string RegistrationId(long number) => $"r-{number}";

    private void Reject(IActorRef replyTo, string deviceId, RegistrationError error, string detail, AuthFailure? auth = null)
    {
        Log.Info("registration of {0} refused: {1}{2} ({3})", deviceId, error, auth is null ? "" : $"/{auth}", detail);
        CountRefusal(error, auth);
        _link.Send(replyTo, new RegistrationRejected(deviceId, error, detail, auth));
    }

    private static void CountRefusal(RegistrationError error, AuthFailure? auth) =>
        CpnsMetrics.RegistrationsRefused.Add(1, CpnsMetrics.Tag("reason", auth?.ToString() ?? error.ToString()));
}
