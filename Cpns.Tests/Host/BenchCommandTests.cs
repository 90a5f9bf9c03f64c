using System.Text.Json;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Host;

public sealed class BenchCommandTests : IDisposable
{
    private readonly TempFolder _folder = new("cpns-bench");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Bench_rekey_measures_flat_and_lkh_at_each_size_and_writes_the_json_keys()
    {
        var json = _folder.File("r.json");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(3),
            "bench", "rekey", "--members", "1000,10000", "--repetitions", "9", "--warmup", "3", "--json", json);
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("flat ÷ lkh", stdout);

        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var rows = document.RootElement.EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.Equal(["members", "scheme", "rekeyMicros", "bytes"], r.EnumerateObject().Select(p => p.Name)));
        Assert.Equal([(1000, "flat"), (1000, "lkh"), (10000, "flat"), (10000, "lkh")],
            rows.Select(r => (r.GetProperty("members").GetInt32(), r.GetProperty("scheme").GetString()!)));

        int Bytes(int members, string scheme) => rows.Single(r => r.GetProperty("members").GetInt32() == members &&
                                                                  r.GetProperty("scheme").GetString() == scheme).GetProperty("bytes").GetInt32();
        Assert.InRange(Bytes(10000, "lkh"), 1, 4095); // O(log n): under 4 KB at 10,000 members
        Assert.True(Bytes(10000, "flat") > 100 * Bytes(10000, "lkh"));
        Assert.True(Bytes(10000, "lkh") < 2 * Bytes(1000, "lkh"));
    }

    [Fact]
    public async Task Bench_persistence_persists_every_registration_at_each_batch_size_on_sqlite()
    {
        var json = _folder.File("p.json");
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(3),
            "bench", "persistence", "--data", _folder.Path, "--registrations", "300", "--batch", "1,100", "--json", json);
        Assert.True(exit == 0, stdout + stderr);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var rows = document.RootElement.EnumerateArray().ToList();
        Assert.Equal([(1, 300), (100, 3)], rows.Select(r => (r.GetProperty("batchSize").GetInt32(), r.GetProperty("events").GetInt32())));
        Assert.All(rows, r => Assert.True(r.GetProperty("registrationsPerSecond").GetDouble() > 0));
        Assert.True(File.Exists(_folder.File("bench.db")));
    }

    [Theory]
    [InlineData("0,10")]
    [InlineData("ten")]
    public async Task Bench_rekey_rejects_bad_sizes(string sizes)
    {
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "bench", "rekey", "--members", sizes);
        Assert.NotEqual(0, exit);
        Assert.Contains("--members takes positive whole numbers", stdout + stderr);
    }

    [Theory]
    [InlineData("bench")]
    [InlineData("bench", "rekey")]
    [InlineData("bench", "persistence")]
    [InlineData("state")]
    public async Task Bench_commands_have_help(params string[] command)
    {
        var (exit, stdout, _) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), [.. command, "--help"]);
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", stdout);
    }
}
