using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE entity (<c>pne-{id}</c>): parent of <c>cskmf</c> (with <c>seca</c>) and <c>smf</c>. It registers with the
/// PN GW of its PN, asking again with backoff until it is answered.
/// </summary>
public sealed class PneEntity : UntypedActor, IWithTimers
{
    private sealed record RetryRegistration : INoSerializationVerificationNeeded
    {
        public static readonly RetryRegistration Instance = new();
    }

    private readonly EntityIdentity _identity;
    private readonly IActorRef _gateway;
    private readonly int _lifetimeSeconds;
    private readonly CpnsSettings _settings;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Random _jitter = new();
    private PneRegistered? _registration;
    private int _attempts;

    public PneEntity(EntityIdentity identity, IActorRef gateway, int lifetimeSeconds, CpnsSettings settings)
    {
        _identity = identity;
        _gateway = gateway;
        _lifetimeSeconds = lifetimeSeconds;
        _settings = settings;
        _cskmf = Context.ActorOf(PneCskmf.Props(identity, settings), "cskmf");
        _smf = Context.ActorOf(PneSmf.Props(identity.DeviceId, _cskmf), "smf");
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static string ActorName(string deviceId) => $"pne-{deviceId}";

    public static Props Props(EntityIdentity identity, IActorRef gateway, CpnsSettings settings, int lifetimeSeconds = 0) =>
        Akka.Actor.Props.Create(() => new PneEntity(identity, gateway, lifetimeSeconds, settings));

    protected override void PreStart() => Register();

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case RetryRegistration:
                if (_registration is null)
                    Register();
                break;
            case PneRegistered registered:
                Timers.Cancel(RetryRegistration.Instance);
                _registration = registered;
                var attached = new GatewayAttached(registered.GatewayId, registered.GatewayKeys, registered.Gateway);
                _cskmf.Tell(attached);
                _smf.Tell(attached);
                Context.System.EventStream.Publish(new EntityRegistered(_identity.DeviceId, EntityKind.Pne,
                    registered.RegistrationId));
                break;
            case RegistrationRejected rejected:
                _log.Error("{0}: registration refused: {1} ({2})", _identity.DeviceId, rejected.Error, rejected.Detail);
                Timers.Cancel(RetryRegistration.Instance);
                break;
            case GetRegistrationStatus:
                Sender.Tell(new RegistrationStatus(_identity.DeviceId, _registration is not null, _registration?.RegistrationId, 0));
                break;
            case GetLocalGroups:
                _smf.Forward(message);
                break;
            case GetKeyState or ExportGroupKey:
                _cskmf.Forward(message);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Register()
    {
        _attempts++;
        _gateway.Tell(new RegisterPne(_identity.DeviceId, _identity.PublicKeys, _lifetimeSeconds,
            new PneEndpoints(Self, _smf, _cskmf)));
        var ceiling = Math.Min(_settings.RegistrationRetryMax.Ticks,
            _settings.RegistrationRetryInitial.Ticks << Math.Min(_attempts - 1, 20)) * 5;
        Timers.StartSingleTimer(RetryRegistration.Instance, RetryRegistration.Instance,
            TimeSpan.FromTicks((long)(ceiling * (0.5 + 0.5 * _jitter.NextDouble()))));
    }
}
