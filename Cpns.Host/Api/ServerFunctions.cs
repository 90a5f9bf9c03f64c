using Akka.Actor;
using Cpns.Actors.Distributed;
using Cpns.Actors.Protocol;

namespace Cpns.Host.Api;

/// <summary>
/// The server entity's functions as the API reaches them: the same actors and the same node-local requests the host
/// and the tests use, asked with a bounded wait. No function is implemented a second time here.
/// </summary>
public sealed class ServerFunctions(ActorSystem system, ServerEndpoints server, IActorRef charging, TimeSpan timeout)
{
    public ActorSystem System { get; } = system;

    public ServerEndpoints Server { get; } = server;

    public TimeSpan Timeout { get; } = timeout;

    public ICanTell Charging { get; } = charging;

    public ICanTell ClusterStatus => System.ActorSelection($"/user/{ClusterNodes.StatusActorName}");

    /// <summary>The function's answer, or null when it gave none in time (the caller answers 503).</summary>
    public async Task<object?> AskAsync(ICanTell function, object request, CancellationToken cancellationToken)
    {
        try
        {
            return await function.Ask<object>(request, Timeout, cancellationToken);
        }
        catch (AskTimeoutException)
        {
            return null;
        }
        catch (ActorNotFoundException)
        {
            return null;
        }
    }
}
