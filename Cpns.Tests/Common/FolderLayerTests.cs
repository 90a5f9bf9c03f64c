using System.Text.RegularExpressions;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Common;

/// <summary>
/// The folders of <c>Cpns.Actors</c> in layers (ARCHITECTURE.md, "Folders"): a folder uses only folders of a lower layer,
/// the entities never use each other, and the one cycle left is Protocol ⇄ Security.
/// </summary>
public sealed partial class FolderLayerTests
{
    private static readonly string[][] Layers =
    [
        ["Protocol", "Security"],
        ["Local", "Persistence"],
        ["Serialization"],
        ["Common"],
        ["Server", "Gateway", "Pne"],
        ["Distributed", "Simulation", "Benchmarks"],
    ];

    [Fact]
    public void Each_folder_uses_only_lower_layers()
    {
        var layerOf = Layers.SelectMany((folders, layer) => folders.Select(f => (f, layer))).ToDictionary(x => x.f, x => x.layer);
        var root = Path.Combine(Repository.Root, "Cpns.Actors");
        var found = Directory.GetDirectories(root).Select(Path.GetFileName).Where(d => d is not ("bin" or "obj")).ToList();
        Assert.Equal(layerOf.Keys.Order(), found.Order()!); // a new folder takes its place in a layer

        var wrong = new List<string>();
        foreach (var folder in layerOf.Keys)
        {
            foreach (var file in Directory.GetFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            {
                foreach (var used in Uses().Matches(File.ReadAllText(file)).Select(m => m.Groups[1].Value).Distinct())
                {
                    if (used == folder || !layerOf.TryGetValue(used, out var usedLayer))
                        continue;
                    var sameLayerCycle = folder is "Protocol" or "Security" && used is "Protocol" or "Security";
                    if (usedLayer > layerOf[folder] || usedLayer == layerOf[folder] && !sameLayerCycle)
                        wrong.Add($"{Path.GetRelativePath(root, file)} uses {used}");
                }
            }
        }

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [GeneratedRegex(@"\bCpns\.Actors\.([A-Z][A-Za-z]+)\b")]
    private static partial Regex Uses();
}
