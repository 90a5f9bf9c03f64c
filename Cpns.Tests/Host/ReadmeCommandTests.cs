using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cpns.Host.Cli;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Host;

/// <summary>
/// The README's commands as a user types them: every <c>cpns</c> command in its shell blocks parses under the real
/// command tree (options exist, values pass their rules), and the by-hand cluster runs as written (only its fixed ports
/// become free ones), from a folder of its own.
/// </summary>
public sealed partial class ReadmeCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new("cpns-readme");

    public void Dispose() => _folder.Dispose();

    private static string Readme() => File.ReadAllText(Path.Combine(Repository.Root, "README.md"));

    /// <summary>The shell blocks of the README, each as its commands (continuation lines joined, comments dropped).</summary>
    private static IReadOnlyList<IReadOnlyList<string>> ShellBlocks() =>
        ShellBlock().Matches(Readme())
            .Select(m => (IReadOnlyList<string>)m.Groups[1].Value.Replace("\\\n", " ").Split('\n')
                .Select(line => line.Trim())
                .Where(line => line.Length > 0 && !line.StartsWith('#'))
                .ToList())
            .ToList();

    /// <summary>The arguments of a line that runs cpns, as a shell would split them; null for any other command.</summary>
    private static string[]? CpnsArguments(string line)
    {
        var words = ShellWords(line);
        if (words.Count > 0 && words[0] == "cpns")
            return words.Skip(1).ToArray();
        var separator = words.IndexOf("--");
        return words.Count > 3 && words[0] == "dotnet" && words[1] == "run" && words.Contains("Cpns.Host") && separator > 0
            ? words.Skip(separator + 1).ToArray()
            : null;
    }

    /// <summary>Quotes, <c>$(…)</c> (stood for by a word) and a <c>&gt; file</c> redirection (dropped).</summary>
    private static List<string> ShellWords(string line)
    {
        line = Substitution().Replace(line, "substituted");
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in line)
        {
            if (quote is not null)
            {
                if (c == quote)
                    quote = null;
                else
                    word.Append(c);
            }
            else if (c is '"' or '\'')
            {
                (quote, inWord) = (c, true);
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                    words.Add(word.ToString());
                (word, inWord) = (new StringBuilder(), false);
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }

        if (inWord)
            words.Add(word.ToString());
        var redirect = words.IndexOf(">");
        return redirect >= 0 ? words.Take(redirect).ToList() : words;
    }

    [Fact]
    public void Every_cpns_command_the_README_shows_parses_with_the_real_command_line()
    {
        var commands = ShellBlocks().SelectMany(b => b).Select(CpnsArguments).OfType<string[]>().ToList();
        Assert.True(commands.Count >= 16, $"only {commands.Count} cpns commands found in the README");
        foreach (var arguments in commands)
        {
            var errors = CpnsCommandLine.Create().Parse(arguments).Errors.Select(e => e.Message).ToList();
            Assert.True(errors.Count == 0, $"cpns {string.Join(' ', arguments)}: {string.Join("; ", errors)}");
        }
    }

    [Fact]
    public async Task The_by_hand_cluster_runs_as_the_README_writes_it()
    {
        var block = ShellBlocks().Single(b => b.Any(line => line.Contains("--demo-groups")));
        var ports = new Dictionary<string, string>();
        var lines = block.Select(line => Port().Replace(line, m =>
        {
            if (!ports.TryGetValue(m.Value, out var free))
                ports[m.Value] = free = FreePorts.Next().ToString();
            return free;
        })).Select(line => CpnsArguments(line) ?? throw new InvalidOperationException($"not a cpns command: {line}")).ToList();
        Assert.Equal(["server", "provision", "provision", "gateway", "gateway", "status"], lines.Select(a => a[0]));

        var nodes = new List<CpnsProcess>();
        try
        {
            foreach (var arguments in lines)
            {
                output.WriteLine("cpns " + string.Join(' ', arguments));
                switch (arguments[0])
                {
                    case "server" or "gateway":
                        var node = CpnsProcess.StartIn(_folder.Path, arguments);
                        nodes.Add(node);
                        await node.WaitForOutputAsync("is up", TimeSpan.FromSeconds(90));
                        break;
                    case "provision":
                        await RunToEndAsync(arguments);
                        break;
                    case "status":
                        await AwaitClusterAsync(arguments);
                        break;
                }
            }
        }
        finally
        {
            foreach (var node in Enumerable.Reverse(nodes))
                node.Terminate();
            foreach (var node in Enumerable.Reverse(nodes))
                Assert.Equal(0, await node.WaitAsync(TimeSpan.FromSeconds(60)));
            foreach (var node in nodes)
            {
                Assert.DoesNotContain("   at ", node.Stderr);
                node.Dispose();
            }
        }
    }

    private async Task<string> RunToEndAsync(string[] arguments)
    {
        using var process = CpnsProcess.StartIn(_folder.Path, arguments);
        var exit = await process.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, $"cpns {string.Join(' ', arguments)} exited {exit}: {process.Stdout}{process.Stderr}");
        return process.Stdout;
    }

    /// <summary>The README's status command, until it shows the three nodes up and every demo group acknowledged by both PN GWs.</summary>
    private async Task AwaitClusterAsync(string[] arguments)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var table = await RunToEndAsync(arguments);
            using var json = JsonDocument.Parse(await RunToEndAsync([.. arguments, "--json"]));
            var members = json.RootElement.GetProperty("members").EnumerateArray().ToList();
            var groups = json.RootElement.GetProperty("groups").EnumerateArray().ToList();
            last = table;
            if (members.Count(m => m.GetProperty("status").GetString() == "Up") == 3 && groups.Count == 3 &&
                groups.All(g => g.GetProperty("acknowledged").GetArrayLength() == 2 && g.GetProperty("pending").GetArrayLength() == 0))
            {
                Assert.Contains("Up", table);
                return;
            }
        }

        Assert.Fail($"the cluster did not come up with three acknowledged groups in time; last status:\n{last}");
    }

    [GeneratedRegex(@"```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    [GeneratedRegex(@"\$\([^)]*\)")]
    private static partial Regex Substitution();

    [GeneratedRegex(@"(?<=[ :])40\d\d\b")]
    private static partial Regex Port();
}
