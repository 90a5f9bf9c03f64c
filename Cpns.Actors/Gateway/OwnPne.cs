using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// A BOTH device's own PNE role (<c>pne</c>, seed Appendix A.1.2.2: a phone that is a PN GW "can also offer and consume
/// CPNS services"). The device's applications publish, withdraw and search services and send and receive group content
/// as a PNE would, under the device's one identity, over its own session with the server: it is its own PN GW. Its group
/// keys are the ones the PN GW's CSKMF holds as a member. A PN GW only has no such child, and refuses these requests.
/// </summary>
public sealed class OwnPne : UntypedActor
{
    private readonly EntityIdentity _identity;
    private readonly IActorRef _cskmf;
    private readonly IActorRef _content;
    private readonly CpnsSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SecureLink _link;
    private readonly PnView _pn = new();
    private readonly ContentInbox _inbox = new();
    private readonly ApplicationRequests _directoryRequests = new();
    private readonly Dictionary<string, IActorRef> _contentSenders = new(StringComparer.Ordinal);

    public OwnPne(EntityIdentity identity, IActorRef cskmf, IActorRef content, CpnsSettings settings)
    {
        _identity = identity;
        _cskmf = cskmf;
        _content = content;
        _settings = settings;
        _link = new SecureLink(Context, identity, settings, _log);
    }

    public static Props Props(EntityIdentity identity, IActorRef cskmf, IActorRef content, CpnsSettings settings) =>
        Akka.Actor.Props.Create(typeof(OwnPne), identity, cskmf, content, settings);

    /// <summary>What a PN GW only answers to a request of its applications that only a PNE or a BOTH device can make.</summary>
    public static object NotAPne(string gatewayId, object request)
    {
        var detail = $"{gatewayId} is a PN GW only: services and content are a PNE's or a BOTH device's";
        return request switch
        {
            LocalRequest { Request: PublishService publish } => new DirectoryRejected(publish.ServiceId, DirectoryError.NotAuthorized, detail),
            LocalRequest { Request: WithdrawService withdraw } => new DirectoryRejected(withdraw.ServiceId, DirectoryError.NotAuthorized, detail),
            LocalRequest { Request: SearchServices search } => new SearchRejected(gatewayId, DirectoryError.NotAuthorized, detail, search.RequestId),
            SendContent send => new ContentRejected(send.DeliveryId, DeliveryError.NotAuthorized, detail),
            _ => new ReceivedContent(gatewayId, []),
        };
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ServerAttached:
                _pn.Apply(message, _link.Guard);
                break;
            case LocalRequest { Request: PublishService or WithdrawService } local:
                SubmitServiceRequest((IWithServiceId)local.Request);
                break;
            case LocalRequest { Request: SearchServices search }:
                SubmitSearch(search);
                break;
            case SendContent send:
                Send(send);
                break;
            case GetReceivedContent:
                Sender.Tell(new ReceivedContent(_identity.DeviceId, _inbox.Items));
                break;
            case ContentForPne content when Sender.Equals(_content):
                // From this PN GW's content function, which got it from the server for this device itself.
                Open(content);
                break;
            case Continuation next:
                next.Then();
                break;
            case ISecureWire wire:
                if (_link.TryOpen(wire, out var answer, out var senderId))
                    OnAnswer(answer, senderId);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnAnswer(object answer, string senderId)
    {
        if (!_pn.IsFromServer(senderId))
        {
            _log.Warning("{0} pne: {1} from {2}, not from its server; ignored", _identity.DeviceId, answer.GetType().Name, senderId);
            return;
        }

        switch (answer)
        {
            case ServicePublished or ServiceWithdrawn or DirectoryRejected:
                _directoryRequests.AnswerService((IWithServiceId)answer);
                break;
            case SearchResult or SearchRejected when _directoryRequests.AnswerSearch(answer):
                break;
            case ContentAccepted accepted when _contentSenders.Remove(accepted.DeliveryId, out var sender):
                sender.Tell(accepted);
                break;
            case ContentRejected rejected when _contentSenders.Remove(rejected.DeliveryId, out var sender):
                sender.Tell(rejected);
                break;
            default:
                _log.Warning("{0} pne: unexpected {1} from the server", _identity.DeviceId, answer.GetType().Name);
                break;
        }
    }

    private string NotRegistered => $"{_identity.DeviceId} is not registered yet";

    private void SubmitServiceRequest(IWithServiceId request)
    {
        if (_pn.Server is not { } server)
        {
            Sender.Tell(new DirectoryRejected(request.ServiceId, DirectoryError.NotAuthorized, NotRegistered));
            return;
        }

        _directoryRequests.AwaitService(request.ServiceId, Sender);
        _link.Send(server.Directory, request);
    }

    private void SubmitSearch(SearchServices search)
    {
        if (_pn.Server is not { } server)
        {
            Sender.Tell(new SearchRejected(_identity.DeviceId, DirectoryError.NotAuthorized, NotRegistered, search.RequestId));
            return;
        }

        _link.Send(server.Directory, _directoryRequests.AwaitSearch(search, _identity.DeviceId, Sender));
    }

    private void Send(SendContent send)
    {
        var asker = Sender;
        if (send.Payload.Length > _settings.Delivery.MaxContentBytes)
        {
            asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.TooLarge,
                $"{send.Payload.Length} bytes is over the {_settings.Delivery.MaxContentBytes}-byte content limit"));
            return;
        }

        _cskmf.Ask<object>(new EncryptContent(send.GroupId, send.Payload), _settings.Timeouts.Ask).ContinueOn(Self, answer =>
        {
            if (answer is not GroupCiphertext ciphertext)
            {
                asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.NoKey, (answer as ContentRefused)?.Detail ?? $"no key of {send.GroupId}"));
                return;
            }

            if (_pn.Server is not { } server)
            {
                asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.InvalidRequest, NotRegistered));
                return;
            }

            _contentSenders[send.DeliveryId] = asker;
            _link.Send(server.Delivery, new PostContent(send.DeliveryId, send.ServiceId, ciphertext, send.TargetDeviceId));
            _content.Tell(new OwnContentUsage(send.ServiceId, send.GroupId, BytesUp: ciphertext.Sealed.Length, BytesDown: 0));
        }, e => asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.NoKey, e.Message)));
    }

    private void Open(ContentForPne content)
    {
        var ciphertext = content.Ciphertext;
        _cskmf.Ask<object>(new DecryptContent(ciphertext), _settings.Timeouts.Ask).ContinueOn(Self,
            answer => Opened(content, answer),
            e => Opened(content, new ContentRefused(ciphertext.GroupId, ciphertext.Epoch, KeyError.UnknownEpoch, e.Message)));
    }

    private void Opened(ContentForPne content, object answer)
    {
        var item = _inbox.Keep(content.DeliveryId, content.ServiceId, content.Ciphertext, answer);
        if (item.Error is { } error)
            _log.Warning("{0} pne: content {1} for {2}#{3} could not be opened: {4}", _identity.DeviceId, content.DeliveryId,
                item.GroupId, item.Epoch, error);
        else
            _content.Tell(new OwnContentUsage(content.ServiceId, item.GroupId, BytesUp: 0, BytesDown: content.Ciphertext.Sealed.Length));
    }
}
