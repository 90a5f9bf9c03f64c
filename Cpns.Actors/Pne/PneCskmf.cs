using Cpns.Actors.Common;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE's CSKMF: holds the group keys its PN GW gives it (pushed, or pulled through <c>seca</c>). With
/// <c>cpns.keys.pull-on-demand</c>, a pull group's key is fetched when the device first needs it: the encryption or
/// decryption that needs it waits (a bounded number per epoch) until the pull ends, and is answered then.
/// </summary>
public sealed class PneCskmf : KeyHolder
{
    private const int MaxWaitingPerEpoch = 256;

    private sealed record PullTimedOut(string GroupId, long Epoch) : INodeLocal;

    private GatewayEndpoints? _gateway;
    /// <summary>Per pull group, the newest epoch its SMF heard of and where its key is, until the key is here.</summary>
    private readonly Dictionary<string, KeyOnDemand> _onDemand = new(StringComparer.Ordinal);
    private readonly Dictionary<(string GroupId, long Epoch), List<(object Request, IActorRef Sender)>> _waiting = new();

    public PneCskmf(EntityIdentity identity, CpnsSettings settings) : base(identity, settings, FlowLeg.GatewayToPne)
    {
    }

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<PneCskmf>(identity, settings).WithMailbox(CompactMailbox.Id);

    protected override void OnOther(object message)
    {
        switch (message)
        {
            case GatewayAttached attached:
                _gateway = attached.Gateway;
                Trust([(attached.GatewayId, attached.Keys)], attached.ServerId, attached.ServerKeys.Signing);
                break;
            case KeyOnDemand onDemand:
                if (!Holds(onDemand.GroupId, onDemand.Epoch) &&
                    (!_onDemand.TryGetValue(onDemand.GroupId, out var known) || known.Epoch < onDemand.Epoch))
                    _onDemand[onDemand.GroupId] = onDemand;
                break;
            case PullTimedOut timedOut:
                AnswerWaiting(timedOut.GroupId, timedOut.Epoch, KeyError.NotYetAvailable, "the key did not arrive in time");
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void Acknowledge(string groupId, long epoch)
    {
        if (_gateway is not null)
            Link.Send(_gateway.Cskmf, new GroupKeyAck(groupId, epoch, Identity.DeviceId));
    }

    protected override bool WaitsForKey(object request)
    {
        var (groupId, epoch) = request switch
        {
            EncryptContent encrypt => (encrypt.GroupId, _onDemand.GetValueOrDefault(encrypt.GroupId)?.Epoch ?? 0),
            DecryptContent decrypt when _onDemand.GetValueOrDefault(decrypt.Ciphertext.GroupId)?.Epoch == decrypt.Ciphertext.Epoch =>
                (decrypt.Ciphertext.GroupId, decrypt.Ciphertext.Epoch),
            _ => ("", 0L),
        };
        if (epoch == 0 || Holds(groupId, epoch))
            return false;

        if (!_waiting.TryGetValue((groupId, epoch), out var waiting))
        {
            // The first need of this epoch: fetch it now (pull step 8, started by the need instead of the notice).
            _waiting[(groupId, epoch)] = waiting = new List<(object, IActorRef)>();
            FlowTrace.Send(Context, Seca, new AcquireGroupKey(groupId, epoch, _onDemand[groupId].KeyLocation), groupId, epoch, 8,
                FlowKind.Pull, FlowLeg.GatewayToPne);
            Timers.StartSingleTimer(("on-demand", groupId, epoch), new PullTimedOut(groupId, epoch), Settings.Timeouts.Ask);
        }

        if (waiting.Count >= MaxWaitingPerEpoch)
        {
            Sender.Tell(new ContentRefused(groupId, epoch, KeyError.Busy, $"{MaxWaitingPerEpoch} requests already wait for {groupId}#{epoch}"));
            return true;
        }

        waiting.Add((request, Sender));
        return true;
    }

    protected override void OnRefused(GroupKeyRefused refused) =>
        AnswerWaiting(refused.GroupId, refused.Epoch, refused.Error, refused.Detail);

    /// <summary>The pull ended without the key: what waited for it is refused with why.</summary>
    private void AnswerWaiting(string groupId, long epoch, KeyError error, string detail)
    {
        if (!_waiting.Remove((groupId, epoch), out var waiting))
            return;
        Timers.Cancel(("on-demand", groupId, epoch));
        Log.Warning("{0}: {1}#{2} could not be fetched when needed ({3}); {4} requests refused", Identity.DeviceId, groupId, epoch,
            error, waiting.Count);
        foreach (var (_, sender) in waiting)
            sender.Tell(new ContentRefused(groupId, epoch, error, detail));
    }

    protected override void OnInstalled(InstalledKey installed)
    {
        var (key, pulled) = (installed.Key, installed.Pulled);
        if (_onDemand.TryGetValue(key.GroupId, out var onDemand) && onDemand.Epoch <= key.Epoch)
            _onDemand.Remove(key.GroupId);
        foreach (var due in _waiting.Keys.Where(k => k.GroupId == key.GroupId && k.Epoch <= key.Epoch).ToList())
        {
            _waiting.Remove(due, out var waiting);
            Timers.Cancel(("on-demand", due.GroupId, due.Epoch));
            foreach (var (request, sender) in waiting!)
                Self.Tell(request, sender); // answered now that the key is here
        }

        PublishInstalled(key, pulled, isMember: true);
        if (pulled)
            FlowTrace.Send(Context, Smf, new GroupKeyAvailable(key.GroupId, key.Epoch), key.GroupId, key.Epoch, 11,
                FlowKind.Pull, FlowLeg.GatewayToPne);
    }
}
