using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The SEC_CF Key Management Centre: makes group keys from the CSPRNG and hands them out only wrapped under
/// its key-encryption key.
/// </summary>
public sealed class Kmc(KeyEncryptionKey kek) : UntypedActor
{
    public static Props Props(KeyEncryptionKey kek) => Akka.Actor.Props.Create(() => new Kmc(kek));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case KmcKeyRequest request:
                var key = GroupKey.Generate(request.GroupId, request.Epoch);
                var issued = new KmcKeyIssued(request.GroupId, request.Epoch, request.Parameters, kek.Wrap(key), key.KeyCheck);
                key.Destroy();
                FlowTrace.Send(Context, Sender, issued, request.GroupId, request.Epoch, 4,
                    request.Parameters.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
