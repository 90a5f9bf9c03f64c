using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Pne;

/// <summary>A PNE's CSKMF: holds the group keys its PN GW gives it (pushed, or pulled through <c>seca</c>).</summary>
public sealed class PneCskmf : KeyHolder
{
    private GatewayEndpoints? _gateway;

    public PneCskmf(EntityIdentity identity, CpnsSettings settings) : base(identity, settings, FlowLeg.GatewayToPne)
    {
    }

    public static Props Props(EntityIdentity identity, CpnsSettings settings) =>
        Akka.Actor.Props.Create<PneCskmf>(identity, settings);

    protected override void OnOther(object message)
    {
        switch (message)
        {
            case GatewayAttached attached:
                _gateway = attached.Gateway;
                Trust([(attached.GatewayId, attached.Keys)], attached.ServerId, attached.ServerKeys.Signing);
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

    protected override void OnInstalled(InstalledKey installed)
    {
        var (key, pulled) = (installed.Key, installed.Pulled);
        PublishInstalled(key, pulled, isMember: true);
        if (pulled)
            FlowTrace.Send(Context, Smf, new GroupKeyAvailable(key.GroupId, key.Epoch), key.GroupId, key.Epoch, 11,
                FlowKind.Pull, FlowLeg.GatewayToPne);
    }
}
