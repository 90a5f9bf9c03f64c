using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>The PN GW ↔ PNE side of <c>connections</c> (CPNS-1): authentication, the PN table, reachability.</summary>
public sealed partial class Connections
{
    private sealed record FlushBatch : INoSerializationVerificationNeeded
    {
        public static readonly FlushBatch Instance = new();
    }

    private sealed record ResendBatch(long BatchId) : INoSerializationVerificationNeeded;


    private sealed class PnLink
    {
        public long LastSeenMs;
        public bool Reachable = true;
        public bool Sleeping;
    }

    // How long a batch waits for the registry's answer before it goes again: learnt from the answers (sent once only, as
    // Karn's rule has it), doubled by every wait that runs out, so that an overloaded registry is not sent its work twice.
    private AdaptiveTimeout? _batchReplyTime;
    private readonly Dictionary<long, long> _batchSentOnce = new();

    private AdaptiveTimeout BatchReplyTime => _batchReplyTime ??=
        new AdaptiveTimeout(Settings.Timeouts.BatchReply, Settings.Timeouts.BatchReply * 8);

    private ChallengeBook? _pneChallengeBook;

    private ChallengeBook PneChallenges => _pneChallengeBook ??= new ChallengeBook(_identity, AuthTranscripts.PneContext, Settings.Security.AuthenticationTimeout);
    private readonly List<(AuthHello Hello, IActorRef ReplyTo)> _helloBacklog = new();
    private RegistrationAdmission? _registrationAdmission;

    private RegistrationAdmission Admission => _registrationAdmission ??=
        new RegistrationAdmission(Settings.Load.RegistrationsInProgress, Settings.Load.BusyLag);

    /// <summary>PNEs challenged and not yet answered, and those waiting for the server's answer.</summary>
    private int RegistrationsInProgress => PneChallenges.OpenCount(NowMs) + _waiting.Count;
    private readonly Dictionary<string, (PneRegistration Registration, IActorRef ReplyTo)> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<long, List<string>> _inFlightBatches = new();
    private readonly HashSet<string> _registeredPnes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedDevices = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedSerials = new(StringComparer.Ordinal);

    /// <summary>The server's signed revocation notices, by revoked device: what this PN GW passes on to its PNEs.</summary>
    private readonly Dictionary<string, RevocationNotice> _revocationNotices = new(StringComparer.Ordinal);

    // The PN table: every PNE registered through here, with its credential, so the PN can be registered again as one batch.
    private readonly Dictionary<string, PneRegistration> _pnTable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PnLink> _pnLinks = new(StringComparer.Ordinal);
    private long _nextBatchId;

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
            case GoingToSleep when _pnLinks.TryGetValue(senderId, out var link):
                link.Sleeping = true;
                SetReachable(senderId, link, reachable: false);
                break;
            case RefreshLease refresh when _registeredPnes.Contains(senderId):
                _pendingRefreshes[senderId] = (refresh.LifetimeSeconds, Sender);
                if (Settings.Registration.BatchWindow <= TimeSpan.Zero)
                    FlushLeaseRefreshes();
                else if (!Timers.IsTimerActive(FlushRefreshes.Instance))
                    Timers.StartSingleTimer(FlushRefreshes.Instance, FlushRefreshes.Instance, Settings.Registration.BatchWindow);
                break;
            case Deregister deregister when deregister.DeviceId == senderId && _registeredPnes.Contains(senderId):
                _pendingDeregistrations[senderId] = Sender;
                _link.Send(_server!.Registry, new DeregisterEntities(_identity.DeviceId, [senderId]));
                break;
            case CreateGroup or AddMember or RemoveMember or DeleteGroup or GrantPrivilege when _registeredPnes.Contains(senderId):
                // A PNE's own signed request: relayed unchanged, so the server checks the PNE's signature itself.
                RelayToServer(envelope, message, senderId, _server?.Smf);
                break;
            case PublishStatus or SubscribeStatus or UnsubscribeStatus when _registeredPnes.Contains(senderId):
                RelayToServer(envelope, message, senderId, _server?.Status);
                break;
            case DmAlert when _registeredPnes.Contains(senderId):
                RelayToServer(envelope, message, senderId, _server?.Dm);
                break;
            case PublishService or WithdrawService or NegotiateService when _registeredPnes.Contains(senderId):
                RelayToServer(envelope, message, senderId, _server?.Directory);
                break;
            case PostContent post when _registeredPnes.Contains(senderId):
                if (envelope is null)
                    RelayToServer(envelope, message, senderId, null);
                else
                    _functions.Content.Forward(new PostFromPne(senderId, post, envelope));
                break;
            case ContentReceipt receipt when receipt.DeviceId == senderId:
                _functions.Content.Tell(receipt);
                break;
            case SearchServices when _registeredPnes.Contains(senderId):
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

    // ---- Authentication of PNEs (this PN GW is the verifier) ----

    private void OnPneHello(AuthHello hello)
    {
        Admission.Arrived(hello.DeviceId);
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

        if (_credential is null || _registrationId is null)
            _helloBacklog.Add((hello, Sender)); // challenged once this PN GW is registered itself
        else
            Challenge(hello, Sender);
    }

    private void Challenge(AuthHello hello, IActorRef replyTo)
    {
        _link.Send(replyTo, PneChallenges.Issue(hello, _credential!, NowMs));
    }

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

        if (Screen(register.DeviceId, register.Keys, register.Credential) is { } failure)
        {
            RejectPne(Sender, register.DeviceId, RegistrationError.AuthenticationFailed, failure.Detail, failure.Failure);
            return;
        }

        _link.Guard.Trust(register.DeviceId, register.Keys.Signing);
        var registration = new PneRegistration(register.DeviceId, register.Keys, register.Credential, register.Proof,
            register.Capabilities, register.LifetimeSeconds, register.Endpoints, Moving: _bridged.Remove(register.DeviceId),
            Enrolment: register.Enrolment);
        _waiting[register.DeviceId] = (registration, Sender);
        // The SMF and CSKMF learn of the PNE at once, so a group notice naming it never arrives before it.
        TellFunctions(new PneAttached(register.DeviceId, register.Keys, register.Endpoints));

        if (_waiting.Count >= Settings.Registration.BatchMax || Settings.Registration.BatchWindow <= TimeSpan.Zero)
            Flush();
        else if (!Timers.IsTimerActive(FlushBatch.Instance))
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, Settings.Registration.BatchWindow);
    }

    private sealed record Screening(AuthFailure Failure, string Detail);

    private Screening? Screen(string deviceId, PublicKeys keys, Credential? credential)
    {
        if (_revokedDevices.Contains(deviceId))
            return new Screening(AuthFailure.Revoked, $"{deviceId} is revoked");
        // An id in the PN table stays bound to its keys: another device cannot take it over here, with or without a
        // credential (the server checks the same against its inventory).
        if (_pnTable.TryGetValue(deviceId, out var known) && known.Keys != keys)
            return new Screening(AuthFailure.KeyMismatch, $"{deviceId} is registered in this PN with other keys");
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
        Log.Info("{0}: PNE {1} refused: {2}{3} ({4})", _identity.DeviceId, deviceId, error, auth is null ? "" : "/" + auth, detail);
        _link.Send(replyTo, new RegistrationRejected(deviceId, error, detail, auth));
    }

    // ---- Forwarding registrations to the server, in batches ----

    private void Flush()
    {
        Timers.Cancel(FlushBatch.Instance);
        if (_server is null || _registrationId is null || _waiting.Count == 0)
            return;
        if (_registryBusyUntilMs - NowMs is > 0 and var wait)
        {
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, TimeSpan.FromMilliseconds(wait));
            return;
        }

        var ids = _waiting.Keys.Where(id => !_inFlightBatches.Values.Any(b => b.Contains(id))).ToList();
        if (ids.Count == 0)
            return;
        var batchId = ++_nextBatchId;
        _inFlightBatches[batchId] = ids;
        _batchSentOnce[batchId] = System.Diagnostics.Stopwatch.GetTimestamp();
        SendBatch(batchId, ids);
    }

    private void SendBatch(long batchId, List<string> ids)
    {
        var pnes = ids.Where(_waiting.ContainsKey).Select(id => _waiting[id].Registration).ToList();
        if (pnes.Count == 0)
        {
            _inFlightBatches.Remove(batchId);
            _batchSentOnce.Remove(batchId);
            return;
        }

        _link.Send(_server!.Registry, new RegisterPnes(_identity.DeviceId, pnes));
        Timers.StartSingleTimer(("batch", batchId), new ResendBatch(batchId), BatchReplyTime.Current);
    }

    private void Resend(long batchId)
    {
        if (!_inFlightBatches.TryGetValue(batchId, out var ids))
            return;
        BatchReplyTime.TimedOut();
        _batchSentOnce.Remove(batchId);
        Log.Warning("{0}: no answer to a batch of {1} PNE registrations; sending it again (waiting {2:0.#} s this time)",
            _identity.DeviceId, ids.Count, BatchReplyTime.Current.TotalSeconds);
        SendBatch(batchId, ids);
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
        {
            _waiting[pne.DeviceId] = (pne with { Proof = null }, pne.Endpoints.Pne);
            _link.Guard.Trust(pne.DeviceId, pne.Keys.Signing);
            TellFunctions(new PneAttached(pne.DeviceId, pne.Keys, pne.Endpoints));
        }

        Log.Info("{0}: registering its PN of {1} PNEs again in one batch", _identity.DeviceId, known.Count);
        Flush();
    }

    /// <summary>The registry said it was busy: no batch goes to it before then.</summary>
    private long _registryBusyUntilMs;

    private void OnPnesRegistered(PnesRegistered registered)
    {
        var answered = registered.Results.Select(r => r.DeviceId).ToHashSet(StringComparer.Ordinal);
        foreach (var (batchId, _) in _inFlightBatches.Where(kv => kv.Value.All(answered.Contains)).ToList())
        {
            _inFlightBatches.Remove(batchId);
            Timers.Cancel(("batch", batchId));
            if (_batchSentOnce.Remove(batchId, out var sentAt))
                BatchReplyTime.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(sentAt));
        }

        if (registered.Results.Any(r => r.Error == RegistrationError.Busy))
        {
            // The PNEs keep waiting (nothing was refused) and go again, in one batch, once the registry's wait is over.
            var wait = Common.Backpressure.WaitFor(registered.RetryAfterMs);
            _registryBusyUntilMs = Math.Max(_registryBusyUntilMs, NowMs + (long)wait.TotalMilliseconds);
            Log.Info("{0}: the registry is busy; {1} PNE registrations go again in {2} ms", _identity.DeviceId,
                registered.Results.Count(r => r.Error == RegistrationError.Busy), wait.TotalMilliseconds);
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, wait);
            registered = registered with { Results = registered.Results.Where(r => r.Error != RegistrationError.Busy).ToList() };
        }

        var accepted = new List<(PneRegistration Registration, IActorRef ReplyTo, PneRegistrationResult Result)>();
        foreach (var result in registered.Results)
        {
            if (!_waiting.Remove(result.DeviceId, out var waiting))
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
        Persist(new PnTableJoined(accepted.Select(a => a.Registration with { Moving = false }).ToList()), e =>
        {
            Apply(e);
            foreach (var (registration, replyTo, result) in accepted)
            {
                _registeredPnes.Add(result.DeviceId);
                HandedOverRegistered(result.DeviceId);
                Heard(result.DeviceId);
                _link.Send(replyTo, new PneRegistered(result.DeviceId, _identity.DeviceId, result.RegistrationId!,
                    result.LifetimeSeconds, result.Credential!, _identity.PublicKeys, Endpoints, _serverCredential!)
                {
                    Revocations = _revocationNotices.Values.ToList(),
                });
            }

            SnapshotIfDue();
        });
    }

    private void Detach(string pneId)
    {
        _registeredPnes.Remove(pneId);
        _pnLinks.Remove(pneId);
        _link.Guard.Forget(pneId);
        TellFunctions(new PneDetached(pneId));
        if (_pnTable.ContainsKey(pneId))
            Persist(new PnTableLeft(new[] { pneId }), Apply);
    }

    // ---- Reachability ----

    /// <summary>Any authenticated uplink makes a PNE reachable (and awake) again.</summary>
    private void Heard(string pneId)
    {
        if (!_pnTable.ContainsKey(pneId) && !_waiting.ContainsKey(pneId))
            return;
        if (!_pnLinks.TryGetValue(pneId, out var link))
            _pnLinks[pneId] = link = new PnLink();
        link.LastSeenMs = NowMs;
        link.Sleeping = false;
        SetReachable(pneId, link, reachable: true);
    }

    /// <summary>A PNE not heard from for the configured number of heartbeat intervals is unreachable.</summary>
    private void CheckPnLinks()
    {
        var silentSince = NowMs - Settings.Connections.MissedHeartbeats * (long)Settings.Connections.HeartbeatInterval.TotalMilliseconds;
        foreach (var (pneId, link) in _pnLinks)
        {
            if (link.Reachable && link.LastSeenMs < silentSince)
                SetReachable(pneId, link, reachable: false);
        }
    }

    private void SetReachable(string pneId, PnLink link, bool reachable)
    {
        if (link.Reachable == reachable && !(reachable == false && link.Sleeping))
            return;
        link.Reachable = reachable;
        Log.Info("{0}: PNE {1} is {2}", _identity.DeviceId, pneId, reachable ? "reachable" : link.Sleeping ? "asleep" : "unreachable");
        var update = new PneReachability(pneId, reachable, link.Sleeping);
        TellFunctions(update);
        Context.System.EventStream.Publish(update);
        // The server's status function hears it too (reachable is part of an entity's status).
        if (_server is not null && _registeredPnes.Contains(pneId))
            _link.Send(_server.Status, new ReachabilityReport(_identity.DeviceId, pneId, reachable));
    }
}
