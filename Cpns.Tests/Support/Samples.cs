using System.Collections;
using System.Reflection;
using Akka.Actor;
using Cpns.Actors;
using Cpns.Actors.Protocol;

namespace Cpns.Tests.Support;

/// <summary>Builds a populated instance of any protocol record by filling its primary constructor.</summary>
public static class Samples
{
    public static object Create(Type type, IActorRef actor, int depth = 0)
    {
        if (type == typeof(string))
            return "sample-" + depth;
        if (type == typeof(int))
            return 42 + depth;
        if (type == typeof(long))
            return 4_200_000_000L + depth;
        if (type == typeof(double))
            return 0.5 + depth;
        if (type == typeof(decimal))
            return 0.0125m + depth;
        if (type == typeof(bool))
            return true;
        if (type == typeof(DateTimeOffset))
            return new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
        if (type == typeof(TimeSpan))
            return TimeSpan.FromSeconds(90);
        if (type == typeof(Octets))
            return Octets.Own(Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + depth)).ToArray());
        if (type.IsEnum)
        {
            var values = Enum.GetValues(type);
            return values.GetValue(values.Length - 1)!;
        }

        if (typeof(IActorRef).IsAssignableFrom(type))
            return actor;
        if (Nullable.GetUnderlyingType(type) is { } inner)
            return Create(inner, actor, depth);
        if (type.IsGenericType && type.GetGenericTypeDefinition() is var definition &&
            (definition == typeof(IReadOnlyList<>) || definition == typeof(IReadOnlyCollection<>) ||
             definition == typeof(IEnumerable<>) || definition == typeof(List<>)))
        {
            var element = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            list.Add(Create(element, actor, depth + 1));
            list.Add(Create(element, actor, depth + 2));
            return list;
        }

        if (type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) ||
                                   type.GetGenericTypeDefinition() == typeof(Dictionary<,>)))
        {
            var args = type.GetGenericArguments();
            var dictionary = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(args))!;
            dictionary.Add(Create(args[0], actor, depth + 1), Create(args[1], actor, depth + 1));
            return dictionary;
        }

        if (depth > 12)
            throw new InvalidOperationException($"sample of {type} nests too deep");
        var constructor = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance)
            .OrderByDescending(c => c.GetParameters().Length).First();
        var arguments = constructor.GetParameters().Select(p => Create(p.ParameterType, actor, depth + 1)).ToArray();
        return constructor.Invoke(arguments);
    }
}
