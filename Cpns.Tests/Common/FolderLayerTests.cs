using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using NetArchTest.Rules;
using Xunit;

namespace Cpns.Tests.Common;

/// <summary>
/// The folders of <c>Cpns.Actors</c> in layers (ARCHITECTURE.md, "Folders"): a folder uses only folders of lower layers,
/// so no two folders use each other, and the entities never use each other. Read from the compiled code — signatures
/// and method bodies — not from <c>using</c> lines, so a fully qualified name cannot slip past.
/// </summary>
public sealed class FolderLayerTests
{
    private const string Root = "Cpns.Actors.";

    private static readonly string[][] Layers =
    [
        ["Protocol"],
        ["Persistence"],
        ["Common"],
        ["Security"],
        ["Local", "Serialization"],
        ["Server", "Gateway", "Pne"],
        ["Distributed", "Simulation", "Benchmarks"],
    ];

    private static readonly Dictionary<string, int> LayerOf =
        Layers.SelectMany((folders, layer) => folders.Select(folder => (folder, layer))).ToDictionary();

    [Fact]
    public void Every_folder_has_its_place_in_a_layer_and_its_namespace_is_its_name()
    {
        var directories = Directory.GetDirectories(Path.Combine(Repository.Root, "Cpns.Actors"))
            .Select(Path.GetFileName).OfType<string>().Where(d => d is not ("bin" or "obj"));
        Assert.Equal(LayerOf.Keys.Order(StringComparer.Ordinal), directories.Order(StringComparer.Ordinal));
        Assert.Equal(LayerOf.Keys.Order(StringComparer.Ordinal), FoldersByNamespace().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Each_folder_uses_only_folders_of_lower_layers()
    {
        var wrong = new List<string>();
        foreach (var (from, fromLayer) in LayerOf)
            foreach (var (to, toLayer) in LayerOf)
                if (to != from && toLayer >= fromLayer && Uses(from, to) is { Count: > 0 } types)
                    wrong.Add($"{from} uses {to}: {string.Join(", ", types.Take(5))}");

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    private static IEnumerable<string> FoldersByNamespace() => typeof(Octets).Assembly.GetTypes()
        .Select(t => t.Namespace)
        .OfType<string>()
        .Where(n => n.StartsWith(Root, StringComparison.Ordinal))
        .Select(n => n[Root.Length..].Split('.')[0])
        .Distinct();

    private static IReadOnlyList<string> Uses(string from, string to) => Types.InAssembly(typeof(Octets).Assembly)
        .That().ResideInNamespace(Root + from)
        .And().HaveDependencyOnAny(Root + to)
        .GetTypes()
        .Select(t => t.FullName ?? t.Name)
        .ToList();
}
