using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The SEC_CF Security Agent (<c>seca</c>), child of a PN GW's or PNE's CSKMF: acquires group keys from the
/// location the SMF names (pull steps 8–10), retrying with backoff while no answer comes, and hands each
/// delivered key to its parent CSKMF.
/// </summary>
public sealed class SecurityAgent : UntypedActor, IWithTimers
{
    private sealed record Pending(IActorRef Location, int Attempts);

    private sealed record RetryAcquire(string GroupId, long Epoch) : INoSerializationVerificationNeeded;

    private readonly string _holderId;
    private readonly FlowLeg _leg;
    private readonly CpnsSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<(string GroupId, long Epoch), Pending> _pending = new();

    public SecurityAgent(string holderId, FlowLeg leg, CpnsSettings settings)
    {
        _holderId = holderId;
        _leg = leg;
        _settings = settings;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string holderId, FlowLeg leg, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new SecurityAgent(holderId, leg, settings));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case AcquireGroupKey acquire:
                // Older acquisitions of the same group are superseded by this one.
                foreach (var stale in _pending.Keys.Where(k => k.GroupId == acquire.GroupId && k.Epoch < acquire.Epoch).ToList())
                    Forget(stale);
                if (_pending.ContainsKey((acquire.GroupId, acquire.Epoch)))
                    return;
                _pending[(acquire.GroupId, acquire.Epoch)] = new Pending(acquire.KeyLocation, 1);
                Request(acquire.GroupId, acquire.Epoch, acquire.KeyLocation, 1);
                break;

            case GroupKeyDelivery delivery:
                Forget((delivery.GroupId, delivery.Epoch));
                Context.Parent.Tell(delivery);
                break;

            case GroupKeyRefused refused:
                if (refused.Error == KeyError.NotYetAvailable)
                    return; // the retry timer asks again
                _log.Warning("{0}: key request {1}#{2} refused: {3} ({4})", _holderId, refused.GroupId, refused.Epoch,
                    refused.Error, refused.Detail);
                Forget((refused.GroupId, refused.Epoch));
                Context.Parent.Tell(refused);
                break;

            case RetryAcquire retry:
                if (!_pending.TryGetValue((retry.GroupId, retry.Epoch), out var pending))
                    return;
                if (pending.Attempts >= _settings.PullMaxAttempts)
                {
                    _log.Error("{0}: gave up acquiring {1}#{2} after {3} attempts", _holderId, retry.GroupId, retry.Epoch,
                        pending.Attempts);
                    Forget((retry.GroupId, retry.Epoch));
                    return;
                }

                _pending[(retry.GroupId, retry.Epoch)] = pending with { Attempts = pending.Attempts + 1 };
                Request(retry.GroupId, retry.Epoch, pending.Location, pending.Attempts + 1);
                break;

            default:
                Unhandled(message);
                break;
        }
    }

    private void Request(string groupId, long epoch, IActorRef location, int attempt)
    {
        FlowTrace.Send(Context, location, new GroupKeyRequest(groupId, epoch, _holderId), groupId, epoch, 9,
            FlowKind.Pull, _leg);
        var backoff = TimeSpan.FromTicks(Math.Min(_settings.PullRetryMax.Ticks,
            _settings.PullRetryInitial.Ticks << Math.Min(attempt - 1, 20)));
        Timers.StartSingleTimer((groupId, epoch), new RetryAcquire(groupId, epoch), backoff);
    }

    private void Forget((string GroupId, long Epoch) key)
    {
        _pending.Remove(key);
        Timers.Cancel(key);
    }
}
