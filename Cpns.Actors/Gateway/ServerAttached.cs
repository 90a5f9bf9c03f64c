using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>The PN GW's link to the server is up: its functions learn the server and how to check credentials.</summary>
/// <param name="Verifier">Checks credentials against the KMC root this PN GW was provisioned with (a Group Key Manager's, say).</param>
public sealed record ServerAttached(ServerEndpoints Server, Credential ServerCredential, CredentialVerifier Verifier) : INodeLocal;
