using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Common;

namespace Cpns.Actors.Server;

/// <summary>
/// The SEC_CF Key Management Centre. It makes group keys from the CSPRNG and hands them out only wrapped under
/// its key-encryption key (steps 3–4), and, as the root of Device ID/Key assignment, issues the X.509
/// credentials of registering entities, signed with its root Ed25519 key.
/// </summary>
public sealed class ServerKmc(KeyEncryptionKey kek, CredentialAuthority authority, CpnsSettings settings) : UntypedActor
{
    public static Props Props(KeyEncryptionKey kek, CredentialAuthority authority, CpnsSettings settings) =>
        Akka.Actor.Props.Create<ServerKmc>(kek, authority, settings);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case KmcKeyRequest request:
                var key = GroupKey.Generate(request.GroupId, request.Epoch);
                var issued = new KmcKeyIssued(request.GroupId, request.Epoch, request.Parameters, kek.Wrap(key), key.KeyCheck);
                key.Dispose();
                FlowTrace.Send(Context, Sender, issued, request.GroupId, request.Epoch, 4,
                    request.Parameters.Mode.ToFlowKind(), FlowLeg.ServerToGateway);
                break;
            case IssueCredentials issue:
                var now = Context.System.Scheduler.Now;
                Sender.Tell(new CredentialsIssued(issue.RequestId, issue.Requests
                    .Select(r =>
                    {
                        var (credential, serial) = authority.IssueWithSerial(r.DeviceId, r.Kind, r.Keys, now.AddMinutes(-5),
                            settings.Security.CredentialValidity, r.PnSecurityCeiling);
                        return new IssuedCredential(r.DeviceId, credential, serial);
                    })
                    .ToList()));
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
