using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

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

    /// <summary>The same step to a sibling, published when it is sent (at once, or on the sibling's introduction).</summary>
    public static void Send(IActorContext context, Sibling to, object message, string groupId, long epoch, int step,
        FlowKind kind, FlowLeg leg)
    {
        if (to.TryGet(out var known))
            Send(context, known, message, groupId, epoch, step, kind, leg);
        else
            to.Send(actor => Send(context, actor, message, groupId, epoch, step, kind, leg));
    }

    private static void Publish(IActorContext context, ActorPath to, string groupId, long epoch, int step, FlowKind kind,
        FlowLeg leg) =>
        context.System.EventStream.Publish(new FlowStep(groupId, epoch, step, Label(context.Self), Label(to), kind, leg));
}
