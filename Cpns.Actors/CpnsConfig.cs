using System.Reflection;
using Akka.Configuration;

namespace Cpns.Actors;

/// <summary>
/// The project's HOCON files (<c>hocon/*.conf</c>), embedded in this assembly so every process and test
/// loads the same text. <see cref="Load"/> stacks them: earlier names win over later ones.
/// </summary>
public static class CpnsConfig
{
    public static string Text(string name)
    {
        var resource = $"Cpns.Actors.hocon.{name}.conf";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
                           ?? throw new ArgumentException($"no embedded HOCON file '{name}.conf'", nameof(name));
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static IReadOnlyList<string> Names =>
        Assembly.GetExecutingAssembly().GetManifestResourceNames()
            .Where(n => n.StartsWith("Cpns.Actors.hocon.", StringComparison.Ordinal))
            .Select(n => n["Cpns.Actors.hocon.".Length..^".conf".Length])
            .ToList();

    /// <summary>The named files over <c>base</c>; the first name has the highest priority.</summary>
    public static Config Load(params string[] names)
    {
        var config = ConfigurationFactory.ParseString(Text("base"));
        foreach (var name in names.Reverse())
            config = ConfigurationFactory.ParseString(Text(name)).WithFallback(config);
        return config;
    }
}
