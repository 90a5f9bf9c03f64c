using Cpns.Actors.Protocol;

namespace Cpns.Actors.Local;

/// <summary>
/// A request from this node's own caller (the operator, an ACE through this node's API, the host) for a function that
/// also takes the same request from entities inside their sessions. Only the node-local API can make one, so a function
/// tells the two apart by type, never by the sender's address.
/// </summary>
public sealed record LocalRequest(ICpnsMessage Request) : INodeLocal;
