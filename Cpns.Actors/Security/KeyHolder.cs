using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// What the CSKMF of a PN GW and of a PNE share: it holds the group keys this entity received (through its
/// <c>seca</c> child when pulled, directly when pushed), unwraps them with the pairwise key of whoever wrapped
/// them, and answers key-state queries. Subclasses say what follows an install.
/// </summary>
public abstract class KeyHolder : UntypedActor, IWithTimers
{
    private sealed record PushOverdue(string GroupId, long Epoch) : INoSerializationVerificationNeeded;

    private readonly Dictionary<string, PublicKeys> _wrappers = new(StringComparer.Ordinal);

    protected KeyHolder(EntityIdentity identity, CpnsSettings settings, FlowLeg inboundLeg)
    {
        Identity = identity;
        Settings = settings;
        Pairwise = new PairwiseKeys(identity);
        Seca = Context.ActorOf(SecurityAgent.Props(identity.DeviceId, inboundLeg, settings), "seca");
        Smf = SiblingRef.Of(Context, "smf");
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected EntityIdentity Identity { get; }

    protected CpnsSettings Settings { get; }

    protected PairwiseKeys Pairwise { get; }

    protected GroupKeyRing Ring { get; } = new();

    protected IActorRef Seca { get; }

    protected SiblingRef Smf { get; }

    protected ILoggingAdapter Log { get; } = Context.GetLogger();

    protected long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    /// <summary>Who may wrap keys for this holder (the server for a PN GW, the PN GW for a PNE).</summary>
    protected void TrustWrapper(string wrapperId, PublicKeys keys) => _wrappers[wrapperId] = keys;

    protected sealed override void OnReceive(object message)
    {
        switch (message)
        {
            case GroupKeyDelivery delivery:
                Install(delivery, pulled: Sender.Equals(Seca));
                break;
            case DropGroupKeys drop:
                Ring.Drop(drop.GroupId, drop.UpToEpoch, drop.Revoked);
                break;
            case GetKeyState query:
                Sender.Tell(Ring.State(query.GroupId, Identity.DeviceId));
                break;
            case ExportGroupKey export:
                Export(export);
                break;
            case GroupKeyRefused refused:
                OnRefused(refused);
                break;
            case ExpectGroupKey expect:
                if (!Holds(expect.GroupId, expect.Epoch))
                    Timers.StartSingleTimer(("push", expect.GroupId), new PushOverdue(expect.GroupId, expect.Epoch),
                        Settings.PushTimeout);
                OnExpect(expect);
                break;
            case PushOverdue overdue:
                if (!Holds(overdue.GroupId, overdue.Epoch))
                {
                    Log.Info("{0}: pushed key {1}#{2} did not arrive; pulling it", Identity.DeviceId, overdue.GroupId,
                        overdue.Epoch);
                    Smf.Tell(new GroupKeyMissing(overdue.GroupId, overdue.Epoch), Self);
                }

                break;
            default:
                OnOther(message);
                break;
        }
    }

    protected abstract void OnInstalled(GroupKeyDelivery delivery, GroupKey key, bool pulled);

    protected virtual void OnRefused(GroupKeyRefused refused)
    {
    }

    protected virtual void OnExpect(ExpectGroupKey expect)
    {
    }

    /// <summary>True if this epoch, or a newer one, of the group is held.</summary>
    protected bool Holds(string groupId, long epoch) => Ring.Current(groupId) is { } current && current.Key.Epoch >= epoch;

    protected abstract void OnOther(object message);

    private void Install(GroupKeyDelivery delivery, bool pulled)
    {
        if (delivery.RecipientId != Identity.DeviceId)
        {
            Log.Warning("{0}: dropped a key for {1}#{2} addressed to {3}", Identity.DeviceId, delivery.GroupId,
                delivery.Epoch, delivery.RecipientId);
            return;
        }

        if (!_wrappers.TryGetValue(delivery.WrapperId, out var wrapperKeys))
        {
            Log.Warning("{0}: dropped a key for {1}#{2} wrapped by unknown {3}", Identity.DeviceId, delivery.GroupId,
                delivery.Epoch, delivery.WrapperId);
            return;
        }

        var pairwise = Pairwise.KeyFor(delivery.WrapperId, wrapperKeys.Agreement);
        var key = GroupKey.Unwrap(pairwise, delivery.WrappedKey, delivery.GroupId, delivery.Epoch, Identity.DeviceId);
        if (key is null || key.KeyCheck != delivery.KeyCheck)
        {
            Log.Warning("{0}: key for {1}#{2} from {3} failed to unwrap or check; dropped", Identity.DeviceId,
                delivery.GroupId, delivery.Epoch, delivery.WrapperId);
            key?.Destroy();
            return;
        }

        if (!Ring.Install(key, delivery.LocalMembers, NowMs))
        {
            key.Destroy();
            return;
        }

        if (Holds(key.GroupId, key.Epoch))
            Timers.Cancel(("push", key.GroupId));

        OnInstalled(delivery, key, pulled);
    }

    protected void PublishInstalled(GroupKeyDelivery delivery, GroupKey key, bool pulled, bool isMember) =>
        Context.System.EventStream.Publish(new KeyInstalled(key.GroupId, key.Epoch, Identity.DeviceId,
            pulled ? DeliveryMode.Pull : DeliveryMode.Push, isMember, key.KeyCheck));

    private void Export(ExportGroupKey export)
    {
        if (!Settings.AllowKeyExport)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, KeyError.NotAuthorized, "key export is off"));
            return;
        }

        var (held, error) = Ring.Get(export.GroupId, export.Epoch, NowMs, TimeSpan.MaxValue);
        if (held is null)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, error!.Value, "epoch not held"));
            return;
        }

        var pairwise = Pairwise.KeyFor(export.RecipientId, export.RecipientAgreementKey);
        Sender.Tell(new ExportedGroupKey(export.GroupId, export.Epoch, Identity.DeviceId, Identity.PublicKeys.Agreement,
            held.Key.WrapUnder(pairwise, export.RecipientId)));
    }
}
