using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// A sibling function of the same entity, addressed by path (e.g. a PN GW's SMF reaching <c>cskmf/seca</c>), so
/// functions that need each other can be created in any order.
/// </summary>
public sealed class SiblingRef
{
    private SiblingRef(ActorSelection selection, ActorPath path)
    {
        Selection = selection;
        Path = path;
    }

    public ActorSelection Selection { get; }

    public ActorPath Path { get; }

    public static SiblingRef Of(IActorContext context, params string[] names)
    {
        var path = context.Self.Path.Parent;
        foreach (var name in names)
            path /= name;
        return new SiblingRef(context.ActorSelection(path), path);
    }

    public void Tell(object message, IActorRef sender) => Selection.Tell(message, sender);
}

/// <summary>Sends one numbered key-flow step and publishes it as a <see cref="FlowStep"/> on the event stream.</summary>
public static class FlowTrace
{
    /// <summary>An actor's path below <c>/user</c>, e.g. <c>server/cskmf/osg</c> or <c>gateway-g1/cskmf/seca</c>.</summary>
    public static string Label(IActorRef actor) => Label(actor.Path);

    public static string Label(ActorPath path)
    {
        var elements = path.Elements;
        var user = -1;
        for (var i = 0; i < elements.Count; i++)
        {
            if (elements[i] == "user")
            {
                user = i;
                break;
            }
        }

        return string.Join('/', elements.Skip(user + 1));
    }

    public static void Send(IActorContext context, IActorRef to, object message, string groupId, long epoch, int step,
        FlowKind kind, FlowLeg leg)
    {
        Publish(context, to.Path, groupId, epoch, step, kind, leg);
        to.Tell(message, context.Self);
    }

    public static void Send(IActorContext context, SiblingRef to, object message, string groupId, long epoch, int step,
        FlowKind kind, FlowLeg leg)
    {
        Publish(context, to.Path, groupId, epoch, step, kind, leg);
        to.Tell(message, context.Self);
    }

    private static void Publish(IActorContext context, ActorPath to, string groupId, long epoch, int step, FlowKind kind,
        FlowLeg leg) =>
        context.System.EventStream.Publish(new FlowStep(groupId, epoch, step, Label(context.Self), Label(to), kind, leg));
}
