using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Common;

namespace Cpns.Actors.Server;

/// <summary>
/// The OMA Security Gateway, child of the server's CSKMF: it turns the CSKMF's parameterized requests into KMC
/// requests and hands the KMC's keys back (steps 2–5), and confirms revocations.
/// </summary>
public sealed class ServerOsg(IActorRef kmc) : UntypedActor
{
    public static Props Props(IActorRef kmc) => Akka.Actor.Props.Create<ServerOsg>(kmc);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case OsgKeyRequest request:
                FlowTrace.Send(Context, kmc, new KmcKeyRequest(request.GroupId, request.Epoch, request.Parameters),
                    request.GroupId, request.Epoch, 3, request.Parameters.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
                break;
            case KmcKeyIssued issued:
                FlowTrace.Send(Context, Context.Parent,
                    new OsgKeyIssued(issued.GroupId, issued.Epoch, issued.Parameters, issued.KeyUnderKek, issued.KeyCheck),
                    issued.GroupId, issued.Epoch, 5, issued.Parameters.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
                break;
            case OsgRevokeKey revoke:
                FlowTrace.Send(Context, Context.Parent, new OsgKeyRevoked(revoke.GroupId, revoke.FinalEpoch),
                    revoke.GroupId, revoke.FinalEpoch, 3, FlowKind.Revoke, FlowLeg.ServerToGateway);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
