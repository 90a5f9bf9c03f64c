using Akka.Actor;

namespace Cpns.Actors.Common;

/// <summary>
/// Told by a function, when it starts and again after a restart, to the actor that can introduce the sibling it needs:
/// the entity root for a sibling function, the function that owns it for a sibling's child (a SMF asking its CSKMF for
/// the SECA). Functions that need each other cannot all be handed each other when they are made.
/// </summary>
public sealed record SiblingsWanted : INoSerializationVerificationNeeded
{
    public static readonly SiblingsWanted Instance = new();
}

/// <summary>The introduction: the function of the same entity called <paramref name="Name"/> is <paramref name="Actor"/>.</summary>
public sealed record SiblingIs(string Name, IActorRef Actor) : INoSerializationVerificationNeeded;

/// <summary>
/// A function of the same entity, known once it is introduced (<see cref="SiblingIs"/>). What is sent to it before then is
/// held, in order, and sent on the introduction; a later introduction (the sibling made again) replaces the first.
/// </summary>
public sealed class Sibling(string name)
{
    private IActorRef? _actor;
    private List<Action<IActorRef>>? _held;

    public string Name => name;

    public void Tell(object message, IActorRef sender)
    {
        if (_actor is { } actor)
            actor.Tell(message, sender);
        else
            (_held ??= []).Add(introduced => introduced.Tell(message, sender));
    }

    /// <summary>The sibling, once introduced.</summary>
    public bool TryGet(out IActorRef actor)
    {
        actor = _actor!;
        return _actor is not null;
    }

    /// <summary>Sends now if the sibling is known, else on its introduction.</summary>
    public void Send(Action<IActorRef> send)
    {
        if (_actor is { } actor)
            send(actor);
        else
            (_held ??= []).Add(send);
    }

    /// <summary>Takes <paramref name="message"/> if it introduces this sibling and comes from <paramref name="introducer"/>.</summary>
    public bool TryMeet(object message, IActorRef sender, IActorRef introducer)
    {
        if (message is not SiblingIs introduced || introduced.Name != name || !sender.Equals(introducer))
            return false;
        _actor = introduced.Actor;
        var held = _held;
        _held = null;
        held?.ForEach(send => send(introduced.Actor));
        return true;
    }
}
