using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Simulation;

/// <summary>
/// A simulated device without CPNS features (a screen, a speaker): it keeps what its PN GW passes on over the PN's own
/// link, and answers <see cref="GetReceivedContent"/> with it, so a run can check what reached the device itself.
/// </summary>
public sealed class LegacyDeviceModel : ReceiveActor
{
    private readonly List<ReceivedItem> _shown = new();

    public static Props Props(string deviceId) => Akka.Actor.Props.Create(typeof(LegacyDeviceModel), deviceId);

    public LegacyDeviceModel(string deviceId)
    {
        Receive<LegacyContent>(content => _shown.Add(new ReceivedItem(content.DeliveryId, content.ServiceId, content.GroupId, 0,
            content.SenderId, content.Payload, null)));
        Receive<GetReceivedContent>(_ => Sender.Tell(new ReceivedContent(deviceId, _shown.ToList())));
    }
}
