using Akka.Actor;

namespace Cpns.Actors.Common;

/// <summary>
/// The one way an actor here goes on after an ask: the answer comes back to the actor as a message carrying what to do
/// next, so the rest runs on the actor's own thread, between its other messages, and may use its state.
/// </summary>
public sealed record Continuation(Action Then) : INoSerializationVerificationNeeded;

public static class Continuations
{
    /// <summary>When <paramref name="ask"/> ends, <paramref name="self"/> runs <paramref name="success"/> or <paramref name="failure"/>
    /// (on receiving a <see cref="Continuation"/>, which it handles by calling <see cref="Continuation.Then"/>).</summary>
    public static void ContinueOn<T>(this Task<T> ask, IActorRef self, Action<T> success, Action<Exception> failure) =>
        ask.PipeTo(self, success: answer => new Continuation(() => success(answer)), failure: e => new Continuation(() => failure(e)));
}
