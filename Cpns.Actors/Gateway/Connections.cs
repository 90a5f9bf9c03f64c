using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A PN GW's connection management: registers the PN GW with the server (retrying with jittered exponential
/// backoff), takes the registrations of its PNEs and forwards those that arrive together as one batch.
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

    private static readonly TimeSpan BatchReplyTimeout = TimeSpan.FromSeconds(10);

    private readonly EntityIdentity _identity;
    private readonly IActorRef _registry;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly CpnsSettings _settings;
    private readonly int _lifetimeSeconds;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, (PneRegistration Registration, IActorRef ReplyTo)> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<long, List<string>> _inFlightBatches = new();
    private readonly HashSet<string> _registeredPnes = new(StringComparer.Ordinal);
    private readonly Random _jitter = new();
    private GatewayEndpoints _endpoints = null!;
    private ServerEndpoints? _server;
    private string? _registrationId;
    private int _registrationAttempts;
    private long _nextBatchId;

    public Connections(EntityIdentity identity, IActorRef registry, IActorRef smf, IActorRef cskmf, int lifetimeSeconds,
        CpnsSettings settings)
    {
        _identity = identity;
        _registry = registry;
        _smf = smf;
        _cskmf = cskmf;
        _lifetimeSeconds = lifetimeSeconds;
        _settings = settings;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, IActorRef registry, IActorRef smf, IActorRef cskmf,
        int lifetimeSeconds, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new Connections(identity, registry, smf, cskmf, lifetimeSeconds, settings));

    protected override void PreStart()
    {
        _endpoints = new GatewayEndpoints(Context.Parent, Self, _smf, _cskmf);
        Register();
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case RetryRegistration:
                if (_registrationId is null)
                    Register();
                break;
            case GatewayRegistered registered:
                OnRegistered(registered);
                break;
            case RegistrationRejected rejected when rejected.DeviceId == _identity.DeviceId:
                _log.Error("{0}: the server refused this PN GW: {1} ({2})", _identity.DeviceId, rejected.Error, rejected.Detail);
                Timers.Cancel(RetryRegistration.Instance);
                break;
            case RegisterPne register:
                OnRegisterPne(register);
                break;
            case FlushBatch:
                Flush();
                break;
            case PnesRegistered registered:
                OnPnesRegistered(registered);
                break;
            case ResendBatch resend:
                Resend(resend.BatchId);
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _registrationId is not null, _registrationId,
                    _registeredPnes.Count));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Register()
    {
        _registrationAttempts++;
        _registry.Tell(new RegisterGateway(_identity.DeviceId, _identity.Kind, _identity.PublicKeys, _lifetimeSeconds,
            _endpoints));
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance, Backoff(_registrationAttempts));
    }

    /// <summary>Full-jitter exponential backoff: uniform in [0, min(max, initial·2^(attempt-1))], at least 10% of it.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(_settings.RegistrationRetryMax.Ticks,
            _settings.RegistrationRetryInitial.Ticks << Math.Min(attempt - 1, 20));
        return TimeSpan.FromTicks((long)(ceiling * (0.1 + 0.9 * _jitter.NextDouble())));
    }

    private void OnRegistered(GatewayRegistered registered)
    {
        Timers.Cancel(RetryRegistration.Instance);
        _registrationId = registered.RegistrationId;
        _server = registered.Server;
        var attached = new ServerAttached(registered.Server);
        _smf.Tell(attached);
        _cskmf.Tell(attached);
        Context.System.EventStream.Publish(new EntityRegistered(_identity.DeviceId, _identity.Kind, registered.RegistrationId));
        if (_waiting.Count > 0)
            Self.Tell(FlushBatch.Instance);
    }

    private void OnRegisterPne(RegisterPne register)
    {
        if (string.IsNullOrWhiteSpace(register.DeviceId))
        {
            Sender.Tell(new RegistrationRejected(register.DeviceId, RegistrationError.InvalidRequest, "a PNE needs an id"));
            return;
        }

        var registration = new PneRegistration(register.DeviceId, register.Keys, register.LifetimeSeconds, register.Endpoints);
        _waiting[register.DeviceId] = (registration, Sender);
        // The SMF and CSKMF learn of the PNE at once, so a group notice naming it never arrives before it.
        var attached = new PneAttached(register.DeviceId, register.Keys, register.Endpoints);
        _smf.Tell(attached);
        _cskmf.Tell(attached);

        if (_registrationId is null)
            return;
        if (_waiting.Count >= _settings.RegistrationBatchMax)
            Flush();
        else if (!Timers.IsTimerActive(FlushBatch.Instance))
            Timers.StartSingleTimer(FlushBatch.Instance, FlushBatch.Instance, _settings.RegistrationBatchWindow);
    }

    private void Flush()
    {
        Timers.Cancel(FlushBatch.Instance);
        if (_server is null || _waiting.Count == 0)
            return;
        var batchId = ++_nextBatchId;
        var ids = _waiting.Keys.ToList();
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

        _server!.Registry.Tell(new RegisterPnes(_identity.DeviceId, pnes));
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
        foreach (var (batchId, ids) in _inFlightBatches.Where(kv => kv.Value.All(answered.Contains)).ToList())
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
                waiting.ReplyTo.Tell(new PneRegistered(result.DeviceId, _identity.DeviceId, result.RegistrationId!,
                    result.LifetimeSeconds, _identity.PublicKeys, _endpoints));
            }
            else
            {
                waiting.ReplyTo.Tell(new RegistrationRejected(result.DeviceId, result.Error!.Value, result.Detail ?? ""));
                var detached = new PneDetached(result.DeviceId);
                _smf.Tell(detached);
                _cskmf.Tell(detached);
            }
        }
    }
}
