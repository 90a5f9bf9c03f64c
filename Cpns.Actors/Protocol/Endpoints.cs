using Akka.Actor;

namespace Cpns.Actors.Protocol;

/// <summary>Where the functions of a CPNS Server can be reached (CPNS-2/3/4), and its public keys.</summary>
public sealed record ServerEndpoints(
    string ServerId,
    PublicKeys Keys,
    IActorRef Registry,
    IActorRef Smf,
    IActorRef Cskmf,
    IActorRef Capabilities,
    IActorRef Status,
    IActorRef Dm,
    IActorRef Directory,
    IActorRef Delivery,
    IActorRef Usage) : ICpnsMessage
{
    /// <summary>
    /// The distributed topology: Group Key Managers on gateway nodes push keys, wrapped by them. Each proves itself with
    /// its own KMC credential (<see cref="IFromKeyManager"/>).
    /// </summary>
    public bool KeyManagers { get; init; }
}

/// <summary>Where the functions of a PN GW can be reached, by the server and by its PNEs.</summary>
public sealed record GatewayEndpoints(
    IActorRef Gateway,
    IActorRef Connections,
    IActorRef Smf,
    IActorRef Cskmf,
    IActorRef Relay,
    IActorRef DirectoryCache,
    IActorRef Content) : ICpnsMessage;

/// <summary>Where the functions of a PNE can be reached by its PN GW.</summary>
public sealed record PneEndpoints(
    IActorRef Pne,
    IActorRef Smf,
    IActorRef Cskmf) : ICpnsMessage;

/// <summary>Asks the <c>server</c> actor for its <see cref="ServerEndpoints"/>.</summary>
public sealed record GetServerEndpoints : INodeLocal
{
    public static readonly GetServerEndpoints Instance = new();
}

/// <summary>Asks the <c>server</c> actor for its charging function, which no other entity reaches (the operator's API does).</summary>
public sealed record GetChargingFunction : INodeLocal
{
    public static readonly GetChargingFunction Instance = new();
}

public sealed record ChargingFunction(IActorRef Charging) : INodeLocal;
