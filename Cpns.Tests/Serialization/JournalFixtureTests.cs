using System.Text;
using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Actors.Serialization;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Serialization;

/// <summary>
/// Journals written by an earlier release must recover under this one. The fixtures in <c>Fixtures/</c> were written
/// by the release before stable manifests (one row per persisted type, a row added by each release that adds a type;
/// a small simulation's SQLite journal): a renamed record, a renamed field or a changed manifest fails here instead of
/// in a user's recovery.
/// </summary>
public sealed class JournalFixtureTests(ITestOutputHelper output) : CpnsTestKit(output)
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures");

    private sealed record JournalRow(string Manifest, string Payload);

    private static IReadOnlyList<JournalRow> Rows() =>
        JsonSerializer.Deserialize<List<JournalRow>>(File.ReadAllText(Path.Combine(Fixtures, "journal-rows-v1.json")),
            new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;

    private ProtocolSerializer Serializer =>
        Assert.IsType<ProtocolSerializer>(Sys.Serialization.FindSerializerForType(typeof(GroupNotice)));

    [Fact]
    public void Every_journal_row_of_the_earlier_release_decodes_and_encodes_back_to_the_same_bytes()
    {
        var rows = Rows();
        Assert.Equal(32, rows.Count);
        foreach (var row in rows)
        {
            var decoded = Serializer.FromBinary(Encoding.UTF8.GetBytes(row.Payload), row.Manifest);
            Assert.IsAssignableFrom<ICpnsEvent>(decoded);
            Assert.Equal(row.Manifest, Serializer.Manifest(decoded));
            Assert.Equal(row.Payload, Encoding.UTF8.GetString(Serializer.ToBinary(decoded)));
        }
    }

    [Fact]
    public void Every_persisted_type_has_a_row_in_the_fixture()
    {
        var inFixture = Rows().Select(r => r.Manifest).ToHashSet();
        var persisted = ProtocolSerializer.ProtocolTypes.Where(t => typeof(ICpnsEvent).IsAssignableFrom(t)).ToList();
        var missing = persisted.Select(t => Serializer.Manifest(Samples.Create(t, TestActor))).Where(m => !inFixture.Contains(m)).ToList();
        Assert.True(missing.Count == 0,
            $"persisted types without a fixture row (add one, written by this release, to journal-rows-v1.json): {string.Join(", ", missing)}");
    }

    [Fact]
    public void An_unknown_manifest_is_refused_by_name()
    {
        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() =>
            Serializer.FromBinary("{}"u8.ToArray(), "NoSuchEvent"));
        Assert.Contains("NoSuchEvent", error.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_simulation_journal_of_the_earlier_release_recovers_to_the_same_state()
    {
        using var folder = new TempFolder("cpns-fixture");
        foreach (var file in Directory.GetFiles(Path.Combine(Fixtures, "simulation-v1")))
            File.Copy(file, Path.Combine(folder.Path, Path.GetFileName(file)));
        // A checkout leaves the key file readable by others, which cpns refuses: owner-only, as a user's would be.
        File.SetUnixFileMode(Path.Combine(folder.Path, "simulate-secrets.json"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var json = Path.Combine(folder.Path, "state.json");

        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(2),
            "state", "--data", folder.Path, "--file", "simulate.db", "--json", json);

        Assert.True(exit == 0, stdout + stderr);
        using var state = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = state.RootElement;
        Assert.Equal(["g0000", "g0001", "g0002"], root.GetProperty("gateways").EnumerateArray().Select(g => g.GetProperty("id").GetString()));
        var pnes = root.GetProperty("pnes").EnumerateArray().ToList();
        Assert.Equal(12, pnes.Count);
        Assert.Equal("g0002", pnes.Single(p => p.GetProperty("id").GetString() == "p00011").GetProperty("gateway").GetString());
        var groups = root.GetProperty("groups").EnumerateArray()
            .Select(g => (Id: g.GetProperty("id").GetString(), Mode: g.GetProperty("mode").GetString(), Epoch: g.GetProperty("epoch").GetInt64(),
                Members: string.Join(",", g.GetProperty("members").EnumerateArray().Select(m => m.GetString())),
                KeyCheck: g.GetProperty("keyCheck").GetString()))
            .ToList();
        Assert.Equal(
        [
            ("grp-0000", "Push", 3L, "p00000,p00001,p00002,p00003,p00004,p00005,p00008,p00009,p00011", "c70776fc2d94ecd0"),
            ("grp-0001", "Pull", 3L, "p00001,p00002,p00003,p00004,p00006,p00007,p00008,p00010,p00011", "c80c7eef04d0340f"),
        ], groups);
    }
}
