using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// A device's management tree (after OMA DM): nodes such as <c>./DevInfo/Id</c> or <c>./CPNS/Lifetime</c>, each with
/// the operations it allows. Owned by the device's actor; Replace and Exec call back into it.
/// </summary>
public sealed class ManagementTree
{
    private sealed record Node(Func<string> Get, Func<string, string?>? Replace, Func<string?>? Exec);

    private readonly SortedDictionary<string, Node> _nodes = new(StringComparer.Ordinal);

    /// <summary>A read-only leaf.</summary>
    public ManagementTree Leaf(string path, Func<string> get)
    {
        _nodes[path] = new Node(get, null, null);
        return this;
    }

    /// <summary>A leaf that can be replaced; <paramref name="replace"/> returns an error text for a bad value, else null.</summary>
    public ManagementTree Setting(string path, Func<string> get, Func<string, string?> replace)
    {
        _nodes[path] = new Node(get, replace, null);
        return this;
    }

    /// <summary>An executable node; <paramref name="exec"/> returns an error text, else null.</summary>
    public ManagementTree Command(string path, Func<string?> exec)
    {
        _nodes[path] = new Node(() => "", null, exec);
        return this;
    }

    public IEnumerable<string> Paths => _nodes.Keys;

    public (DmStatus Status, string? Value, string Detail) Apply(DmOperation operation, string path, string? value)
    {
        if (!_nodes.TryGetValue(path, out var node))
        {
            // An interior node: Get lists its children.
            var children = _nodes.Keys.Where(p => p.StartsWith(path.TrimEnd('/') + "/", StringComparison.Ordinal)).ToList();
            return operation == DmOperation.Get && children.Count > 0
                ? (DmStatus.Ok, string.Join(",", children), "")
                : (DmStatus.NotFound, null, $"no node {path}");
        }

        switch (operation)
        {
            case DmOperation.Get when node.Exec is null:
                return (DmStatus.Ok, node.Get(), "");
            case DmOperation.Replace when node.Replace is not null:
                if (value is null)
                    return (DmStatus.BadValue, null, $"Replace of {path} needs a value");
                return node.Replace(value) is { } problem ? (DmStatus.BadValue, null, problem) : (DmStatus.Ok, node.Get(), "");
            case DmOperation.Exec when node.Exec is not null:
                return node.Exec() is { } failure ? (DmStatus.BadValue, null, failure) : (DmStatus.Ok, null, "");
            default:
                return (DmStatus.NotAllowed, null, $"{operation} is not allowed on {path}");
        }
    }
}
