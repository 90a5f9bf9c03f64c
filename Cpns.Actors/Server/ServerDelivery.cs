using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's content delivery function (<c>delivery</c>, seed §5.3.1.7): content for a service group, or for one
/// member of it, travels encrypted once under the group's current epoch key — by the server's CSKMF for a local
/// sender (an Application/Content Entity, the operator), or by the sending PNE itself — and crosses CPNS-2/3/4 once
/// per PN GW, which fans it out to the members of its PN. The server never sees a PNE's plaintext.
/// Local senders' usage is recorded here; the PN GWs report their PNEs' usage themselves.
/// </summary>
public sealed class ServerDelivery : UntypedActor
{
    private const int RememberedDeliveries = 100_000;
    private TimeSpan AskTimeout => _settings.Timeouts.Ask;


    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CpnsSettings _settings;
    private readonly string _serverId;
    private readonly SecureLink _link;
    private readonly IActorRef _smf;
    private readonly IActorRef _cskmf;
    private readonly IActorRef _usage;
    private readonly Placements _placements = new();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private readonly Dictionary<string, DeliveryRecord> _localDeliveries = new(StringComparer.Ordinal);
    private long _accepted;
    private long _rejected;
    private long _gatewayMessages;

    public ServerDelivery(EntityIdentity identity, IActorRef smf, IActorRef cskmf, IActorRef usage, CpnsSettings settings)
    {
        _settings = settings;
        _serverId = identity.DeviceId;
        _link = new SecureLink(Context, identity, settings, _log);
        _smf = smf;
        _cskmf = cskmf;
        _usage = usage;
    }

    public static Props Props(EntityIdentity identity, IActorRef smf, IActorRef cskmf, IActorRef usage, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerDelivery>(identity, smf, cskmf, usage, settings);

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override void OnReceive(object message)
    {
        if (_placements.ApplyAndTrust(message, _link.Guard, trustPnes: true))
            return;

        switch (message)
        {
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var inner, out var senderId))
                {
                    if (inner is PostContent post)
                        OnPost(post, senderId, Sender);
                    else
                        _log.Warning("delivery: unexpected signed {0} from {1}", inner.GetType().Name, senderId);
                }

                break;
            case DeliverContent deliver:
                OnDeliver(deliver, Sender);
                break;
            case Continuation next:
                next.Then();
                break;
            case GetDelivery query:
                Sender.Tell(_localDeliveries.GetValueOrDefault(query.DeliveryId) ?? new DeliveryRecord(query.DeliveryId, null, null, 0, null));
                break;
            case GetDeliveryStats:
                Sender.Tell(new DeliveryStats(_accepted, _rejected, _gatewayMessages));
                break;
            case PneMoved:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>A local sender: validated, encrypted by the CSKMF under the current epoch, then fanned out.</summary>
    private void OnDeliver(DeliverContent deliver, IActorRef replyTo)
    {
        void Reply(object answer) => replyTo.Tell(answer);

        if (Invalid(deliver.DeliveryId, deliver.ServiceId, deliver.GroupId, deliver.Payload.Length + SealedLayout.Overhead) is { } problem)
        {
            Reply(Reject(deliver.DeliveryId, problem.Error, problem.Detail));
            return;
        }

        WithGroup(deliver.GroupId, group =>
        {
            if (Recipients(group, deliver.SenderId, deliver.TargetDeviceId, senderMustBeMember: false) is not { } recipients)
            {
                Reply(Reject(deliver.DeliveryId, group.Exists ? DeliveryError.NotAMember : DeliveryError.UnknownGroup,
                    group.Exists ? $"{deliver.TargetDeviceId} is not a member of {deliver.GroupId}" : $"no group {deliver.GroupId}"));
                return;
            }

            _cskmf.Ask<object>(new SealForGroup(deliver.GroupId, deliver.SenderId, deliver.Payload), AskTimeout)
                .ContinueOn(Self, answer =>
                {
                    if (answer is not GroupCiphertext ciphertext)
                    {
                        Reply(Reject(deliver.DeliveryId, DeliveryError.NoKey,
                            (answer as ContentRefused)?.Detail ?? $"{deliver.GroupId} has no key"));
                        return;
                    }

                    var accepted = FanOut(deliver.DeliveryId, deliver.ServiceId, ciphertext, recipients);
                    RecordLocalSender(deliver, ciphertext);
                    _localDeliveries[deliver.DeliveryId] = new DeliveryRecord(deliver.DeliveryId, deliver.SenderId, deliver.ServiceId, NowMs, accepted);
                    Reply(accepted);
                }, e => Reply(Reject(deliver.DeliveryId, DeliveryError.NoKey, e.Message)));
        });
    }

    /// <summary>A PNE's own ciphertext, through its PN GW: it must be the sender, a member, and on the current epoch.</summary>
    private void OnPost(PostContent post, string senderId, IActorRef replyTo)
    {
        void Reply(object answer) => _link.Send(replyTo, answer);

        if (Invalid(post.DeliveryId, post.ServiceId, post.GroupId, post.Ciphertext.Sealed.Length) is { } problem)
        {
            Reply(Reject(post.DeliveryId, problem.Error, problem.Detail));
            return;
        }

        if (post.Ciphertext.SenderId != senderId)
        {
            Reply(Reject(post.DeliveryId, DeliveryError.NotAuthorized,
                $"{senderId} signed content that names {post.Ciphertext.SenderId} as its sender"));
            return;
        }

        WithGroup(post.GroupId, group =>
        {
            if (!group.Exists)
            {
                Reply(Reject(post.DeliveryId, DeliveryError.UnknownGroup, $"no group {post.GroupId}"));
                return;
            }

            if (Recipients(group, senderId, post.TargetDeviceId, senderMustBeMember: true) is not { } recipients)
            {
                Reply(Reject(post.DeliveryId, DeliveryError.NotAMember,
                    $"{senderId} and {post.TargetDeviceId ?? "every recipient"} must be members of {post.GroupId}"));
                return;
            }

            if (post.Ciphertext.Epoch != group.Epoch)
            {
                Reply(Reject(post.DeliveryId, DeliveryError.StaleEpoch,
                    $"{post.GroupId} is at epoch {group.Epoch}; the content is under {post.Ciphertext.Epoch}"));
                return;
            }

            Reply(FanOut(post.DeliveryId, post.ServiceId, post.Ciphertext, recipients));
        });
    }

    /// <summary>The request's problem, if it has one; <paramref name="bytes"/> is the size of the ciphertext.</summary>
    private (DeliveryError Error, string Detail)? Invalid(string deliveryId, string serviceId, string groupId, int bytes)
    {
        if (!DeviceIds.IsValid(deliveryId) || !DeviceIds.IsValid(serviceId) || !DeviceIds.IsValid(groupId))
            return (DeliveryError.InvalidRequest, "delivery, service and group ids are 1 to 128 letters, digits, '-', '_', '.' or ':'");
        if (bytes > _settings.Delivery.MaxContentBytes + SealedLayout.Overhead)
            return (DeliveryError.TooLarge, $"{bytes - SealedLayout.Overhead} bytes is over the {_settings.Delivery.MaxContentBytes}-byte content limit");
        if (_seen.Contains(deliveryId))
            return (DeliveryError.Duplicate, $"delivery {deliveryId} was already made");
        return null;
    }

    private ContentRejected Reject(string deliveryId, DeliveryError error, string detail)
    {
        _rejected++;
        CpnsMetrics.ContentDeliveries.Add(1, CpnsMetrics.Tag("outcome", "refused"));
        _log.Info("delivery {0} refused: {1} ({2})", deliveryId, error, detail);
        return new ContentRejected(deliveryId, error, detail);
    }

    private void WithGroup(string groupId, Action<GroupState> then) =>
        _smf.Ask<GroupState>(new GetGroup(groupId), AskTimeout)
            .ContinueOn(Self, then, _ => then(new GroupState(groupId, DeliveryMode.Pull, 0, [], false)));

    /// <summary>The members that get the content (all but the sender, or the one target), or null if that is not allowed.</summary>
    private static IReadOnlyList<string>? Recipients(GroupState group, string senderId, string? targetId, bool senderMustBeMember)
    {
        if (!group.Exists || (senderMustBeMember && !group.Members.Contains(senderId)))
            return null;
        if (targetId is not null)
            return group.Members.Contains(targetId) ? new[] { targetId } : null;
        return group.Members.Where(m => m != senderId).ToList();
    }

    private ContentAccepted FanOut(string deliveryId, string serviceId, GroupCiphertext ciphertext, IReadOnlyList<string> recipients)
    {
        Remember(deliveryId);
        _accepted++;
        CpnsMetrics.ContentDeliveries.Add(1, CpnsMetrics.Tag("outcome", "accepted"));
        var byGateway = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        var unplaced = new List<string>();
        foreach (var member in recipients)
        {
            if (_placements.GatewayOf(member) is not { } gatewayId)
            {
                unplaced.Add(member);
                continue;
            }

            if (!byGateway.TryGetValue(gatewayId, out var members))
                byGateway[gatewayId] = members = new List<string>();
            // A BOTH device is also a PNE of its own PN, whose applications get content; a PN GW only has none.
            if (member != gatewayId || _placements.Gateway(gatewayId)!.Kind == EntityKind.Both)
                members.Add(member);
        }

        foreach (var (gatewayId, members) in byGateway)
        {
            if (members.Count == 0)
                continue;
            _gatewayMessages++;
            CpnsMetrics.ContentBytes.Add(ciphertext.Sealed.Length);
            _link.Send(_placements.Gateway(gatewayId)!.Endpoints.Content, new GroupContent(deliveryId, serviceId, ciphertext, members));
        }

        if (unplaced.Count > 0)
            _log.Info("delivery {0}: {1} members of {2} are not registered", deliveryId, unplaced.Count, ciphertext.GroupId);
        var sent = byGateway.Where(kv => kv.Value.Count > 0)
            .ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value, StringComparer.Ordinal);
        return new ContentAccepted(deliveryId, ciphertext.GroupId, ciphertext.Epoch, ciphertext.Sealed.Length, sent, unplaced);
    }

    private void RecordLocalSender(DeliverContent deliver, GroupCiphertext ciphertext)
    {
        var now = NowMs;
        _usage.Tell(new LocalRequest(new UsageReport(_serverId, 0, new[]
        {
            new UsageRecord(deliver.SenderId, _serverId, deliver.ServiceId, deliver.GroupId, 1, ciphertext.Sealed.Length, 0, 0, now, now),
        })));
    }

    private void Remember(string deliveryId)
    {
        _seen.Add(deliveryId);
        _seenOrder.Enqueue(deliveryId);
        if (_seenOrder.Count > RememberedDeliveries)
        {
            var forgotten = _seenOrder.Dequeue();
            _seen.Remove(forgotten);
            _localDeliveries.Remove(forgotten);
        }
    }
}
