using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Common;

namespace Cpns.Actors.Security;

/// <summary>
/// The SEC_CF Security Agent (<c>seca</c>), child of a PN GW's or PNE's CSKMF: acquires group keys from the
/// location the SMF names (pull steps 8–10) with signed requests, retrying with backoff while no answer comes,
/// and hands each delivered key — once its envelope checks out — to its parent CSKMF.
/// </summary>
public sealed class SecurityAgent : UntypedActor, IWithTimers
{
    private sealed record Pending(IActorRef Location, int Attempts, long SentAt, int BusyAnswers = 0);

    private sealed record RetryAcquire(string GroupId, long Epoch, bool AfterBusy = false) : INoSerializationVerificationNeeded;

    private readonly EntityIdentity _identity;
    private readonly FlowLeg _leg;
    private readonly CpnsSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly Dictionary<(string GroupId, long Epoch), Pending> _pending = new();
    // How long the key location takes to answer here: a retry waits at least that long, so a loaded location is not
    // asked again (which would only add to its load) while its answer is still on the way.
    private readonly AdaptiveTimeout _answerTime;

    public SecurityAgent(EntityIdentity identity, FlowLeg leg, CpnsSettings settings)
    {
        _identity = identity;
        _leg = leg;
        _settings = settings;
        _link = new SecureLink(Context, identity, settings, _log);
        _answerTime = new AdaptiveTimeout(settings.Keys.PullRetryInitial, settings.Keys.PullRetryMax);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(EntityIdentity identity, FlowLeg leg, CpnsSettings settings) =>
        Akka.Actor.Props.Create<SecurityAgent>(identity, leg, settings).WithMailbox(Common.CompactMailbox.Id);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case TrustSigner trust:
                _link.Guard.Trust(trust.SignerId, trust.SigningKey);
                break;

            case AcquireGroupKey acquire:
                // Older acquisitions of the same group are superseded by this one.
                foreach (var stale in _pending.Keys.Where(k => k.GroupId == acquire.GroupId && k.Epoch < acquire.Epoch).ToList())
                    Forget(stale);
                if (_pending.ContainsKey((acquire.GroupId, acquire.Epoch)))
                    return;
                _pending[(acquire.GroupId, acquire.Epoch)] = new Pending(acquire.KeyLocation, 1, Stopwatch.GetTimestamp());
                Request(acquire.GroupId, acquire.Epoch, acquire.KeyLocation, 1);
                break;

            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                    OnReply(inner, senderId);
                break;

            case RetryAcquire retry:
                if (!_pending.TryGetValue((retry.GroupId, retry.Epoch), out var pending))
                    return;
                if (retry.AfterBusy)
                {
                    Request(retry.GroupId, retry.Epoch, pending.Location, pending.Attempts);
                    return;
                }

                if (pending.Attempts >= _settings.Keys.PullMaxAttempts)
                {
                    _log.Error("{0}: gave up acquiring {1}#{2} after {3} attempts", _identity.DeviceId, retry.GroupId, retry.Epoch,
                        pending.Attempts);
                    Forget((retry.GroupId, retry.Epoch));
                    return;
                }

                _answerTime.TimedOut();
                _pending[(retry.GroupId, retry.Epoch)] = pending with { Attempts = pending.Attempts + 1 };
                Common.CpnsMetrics.Retries.Add(1, Common.CpnsMetrics.Tag("function", "key-pull"));
                Request(retry.GroupId, retry.Epoch, pending.Location, pending.Attempts + 1);
                break;

            case GetSecurityCounters:
                Sender.Tell(_link.Counters());
                break;

            default:
                Unhandled(message);
                break;
        }
    }

    private void OnReply(object reply, string senderId)
    {
        // Timed only when asked once (Karn's rule): an answer to a request sent again could be to either copy.
        var answered = reply switch
        {
            GroupKeyDelivery d => (d.GroupId, d.Epoch),
            GroupKeyRefused r => (r.GroupId, r.Epoch),
            _ => default,
        };
        if (answered.GroupId is not null && _pending.TryGetValue(answered, out var asked) && asked is { Attempts: 1, BusyAnswers: 0 })
            _answerTime.Observe(Stopwatch.GetElapsedTime(asked.SentAt));
        switch (reply)
        {
            case GroupKeyDelivery delivery when delivery.WrapperId == senderId:
                Forget((delivery.GroupId, delivery.Epoch));
                Context.Parent.Tell(delivery);
                break;
            case GroupKeyRefused { Error: KeyError.NotYetAvailable }:
                break; // the retry timer asks again
            case GroupKeyRefused { Error: KeyError.Busy } busy when _pending.TryGetValue((busy.GroupId, busy.Epoch), out var waiting):
                // Not a failed attempt: the key function is behind and says when to come back.
                if (waiting.BusyAnswers >= _settings.Load.MaxBusyAnswers)
                {
                    _log.Warning("{0}: {1}#{2}: the key function stayed busy for {3} answers; giving up", _identity.DeviceId, busy.GroupId,
                        busy.Epoch, waiting.BusyAnswers);
                    Forget((busy.GroupId, busy.Epoch));
                    Context.Parent.Tell(busy);
                    break;
                }

                _pending[(busy.GroupId, busy.Epoch)] = waiting with { BusyAnswers = waiting.BusyAnswers + 1 };
                Timers.StartSingleTimer((busy.GroupId, busy.Epoch), new RetryAcquire(busy.GroupId, busy.Epoch, AfterBusy: true),
                    Common.Backpressure.WaitFor(busy.RetryAfterMs));
                break;
            case GroupKeyRefused { Error: KeyError.Busy }:
                break; // an answer to a request since settled
            case GroupKeyRefused refused:
                _log.Warning("{0}: key request {1}#{2} refused: {3} ({4})", _identity.DeviceId, refused.GroupId, refused.Epoch,
                    refused.Error, refused.Detail);
                Forget((refused.GroupId, refused.Epoch));
                Context.Parent.Tell(refused);
                break;
            default:
                _log.Warning("{0}: unexpected {1} from {2}", _identity.DeviceId, reply.GetType().Name, senderId);
                break;
        }
    }

    private void Request(string groupId, long epoch, IActorRef location, int attempt)
    {
        FlowTrace.Send(Context, location, _link.SealFor(location, new GroupKeyRequest(groupId, epoch, _identity.DeviceId,
            Context.System.Scheduler.Now.ToUnixTimeMilliseconds())), groupId, epoch, 9,
            FlowKind.Pull, _leg);
        var backoff = _settings.Keys.PullBackoff.Delay(attempt);
        var learnt = _answerTime.Current;
        Timers.StartSingleTimer((groupId, epoch), new RetryAcquire(groupId, epoch), backoff > learnt ? backoff : learnt);
    }

    private void Forget((string GroupId, long Epoch) key)
    {
        _pending.Remove(key);
        Timers.Cancel(key);
    }
}
