using Akka.Event;
using Akka.Actor;
using Cpns.Actors.Common;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>
/// A PNE's side of content delivery: what it sends is encrypted by its own CSKMF under the group's current epoch
/// (it is the sender bound into the ciphertext) and posted through its PN GW; what arrives is opened by its CSKMF,
/// kept (<see cref="ContentInbox"/>), and confirmed to the PN GW.
/// </summary>
public sealed partial class PneEntity
{
    private TimeSpan ContentAskTimeout => _settings.Timeouts.Ask;

    private readonly Dictionary<string, IActorRef> _contentSenders = new(StringComparer.Ordinal);
    private readonly ContentInbox _received = new();

    private void OnContent(object message)
    {
        switch (message)
        {
            case SendContent send:
                Send(send);
                break;
            case GetReceivedContent:
                Sender.Tell(new ReceivedContent(_identity.DeviceId, _received.Items));
                break;
        }
    }

    private void Send(SendContent send)
    {
        var asker = Sender;
        if (_registration is null)
        {
            asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.InvalidRequest, $"{_identity.DeviceId} is not registered"));
            return;
        }

        if (send.Payload.Length > _settings.Delivery.MaxContentBytes)
        {
            asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.TooLarge,
                $"{send.Payload.Length} bytes is over the {_settings.Delivery.MaxContentBytes}-byte content limit"));
            return;
        }

        _cskmf.Ask<object>(new EncryptContent(send.GroupId, send.Payload), ContentAskTimeout).ContinueOn(Self,
            answer =>
            {
                if (answer is not GroupCiphertext ciphertext)
                {
                    asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.NoKey,
                        (answer as ContentRefused)?.Detail ?? $"no key of {send.GroupId}"));
                    return;
                }

                if (_registration is null)
                {
                    asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.InvalidRequest, $"{_identity.DeviceId} is not registered"));
                    return;
                }

                _contentSenders[send.DeliveryId] = asker;
                _link.SendSigned(_registration.Gateway.Connections, new PostContent(send.DeliveryId, send.ServiceId, ciphertext, send.TargetDeviceId));
            },
            e => asker.Tell(new ContentRejected(send.DeliveryId, DeliveryError.NoKey, e.Message)));
    }

    private void AnswerSender(object answer)
    {
        var deliveryId = answer switch
        {
            ContentAccepted accepted => accepted.DeliveryId,
            ContentRejected rejected => rejected.DeliveryId,
            _ => "",
        };
        if (_contentSenders.Remove(deliveryId, out var asker))
            asker.Tell(answer);
    }

    private void Open(ContentForPne content)
    {
        var ciphertext = content.Ciphertext;
        _cskmf.Ask<object>(new DecryptContent(ciphertext), ContentAskTimeout).ContinueOn(Self,
            answer => Opened(content, answer),
            e => Opened(content, new ContentRefused(ciphertext.GroupId, ciphertext.Epoch, KeyError.UnknownEpoch, e.Message)));
    }

    private void Opened(ContentForPne content, object answer)
    {
        var ciphertext = content.Ciphertext;
        var item = _received.Keep(content.DeliveryId, content.ServiceId, ciphertext, answer);
        if (item.Error is null && _representedDevice is not null)
            _representedDevice.Tell(new LegacyContent(item.DeliveryId, item.ServiceId, item.GroupId, item.SenderId, item.Plaintext!));
        if (item.Error is { } error)
            _log.Warning("{0}: content {1} for {2}#{3} could not be opened: {4}", _identity.DeviceId, content.DeliveryId,
                ciphertext.GroupId, ciphertext.Epoch, error);
        // Confirmed through the PN GW's connections, like every uplink (it also tells the PN GW this PNE is alive).
        if (_registration is not null)
            _link.Send(_registration.Gateway.Connections, new ContentReceipt(content.DeliveryId, _identity.DeviceId, ciphertext.GroupId,
                ciphertext.Epoch, item.Error is null));
    }
}
