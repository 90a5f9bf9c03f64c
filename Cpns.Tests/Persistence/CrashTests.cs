using System.Text.Json;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Persistence;

/// <summary>
/// A real `cpns` process on a SQLite file is killed with SIGKILL in the middle of its work; everything it had
/// acknowledged — registrations and group changes — is in the database afterwards.
/// </summary>
public sealed class CrashTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new("cpns-crash");

    public void Dispose() => _folder.Dispose();

    private sealed record Ack(string Kind, string Id, string? RegistrationId, long? Epoch, List<string>? Members);

    private sealed record State(List<Entry> Gateways, List<Entry> Pnes, List<Group> Groups);

    private sealed record Entry(string Id, string RegistrationId);

    private sealed record Group(string Id, long Epoch, List<string> Members);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private List<Ack> ReadAcks()
    {
        var acks = new List<Ack>();
        using var stream = new FileStream(_folder.File("acks.jsonl"), FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            try
            {
                acks.Add(JsonSerializer.Deserialize<Ack>(line, Json)!);
            }
            catch (JsonException)
            {
                // the line the kill cut short was never fully acknowledged to anyone
            }
        }

        return acks;
    }

    [Fact]
    public async Task Everything_acknowledged_before_a_SIGKILL_is_in_the_database_after_it()
    {
        using var run = CpnsProcess.Start("simulate", "--data", _folder.Path, "--gateways", "20", "--pnes", "1500", "--groups", "40",
            "--churn", "40", "--ack-log", _folder.File("acks.jsonl"), "--quiet");
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (ReadAcks().Count(a => a.Kind == "group") < 60)
        {
            Assert.False(run.HasExited, "the run ended before it could be killed:\n" + run.Stdout + run.Stderr);
            Assert.True(DateTime.UtcNow < deadline, "no group changes were acknowledged:\n" + run.Stdout + run.Stderr);
            await Task.Delay(20);
        }

        Assert.False(run.HasExited);
        run.Kill(); // SIGKILL: no shutdown, no flush
        var acks = ReadAcks();
        output.WriteLine($"killed after {acks.Count} acknowledgements ({acks.Count(a => a.Kind == "group")} group changes)");

        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(2), "state", "--data", _folder.Path,
            "--file", "simulate.db", "--json", _folder.File("state.json"));
        Assert.True(exit == 0, stdout + stderr);
        var state = JsonSerializer.Deserialize<State>(await File.ReadAllTextAsync(_folder.File("state.json")), Json)!;

        var registered = state.Gateways.Concat(state.Pnes).ToDictionary(e => e.Id, e => e.RegistrationId);
        var registrations = acks.Where(a => a.Kind is "gateway" or "pne").ToList();
        Assert.True(registrations.Count >= 1520, $"only {registrations.Count} registrations were acknowledged");
        // An entity whose registration answer was slow registers again (a new id; ids are never reused): the database
        // holds its last acknowledged registration, or one it made after that — never an older one, never none.
        static int Number(string registrationId) => int.Parse(registrationId[2..]);
        foreach (var ack in registrations.GroupBy(a => a.Id).Select(g => g.MaxBy(a => Number(a.RegistrationId!))!))
        {
            Assert.True(registered.TryGetValue(ack.Id, out var registrationId), $"{ack.Id} was acknowledged but is gone");
            Assert.True(Number(registrationId) >= Number(ack.RegistrationId!),
                $"{ack.Id}: registration {ack.RegistrationId} was acknowledged, the database holds the older {registrationId}");
        }

        var groups = state.Groups.ToDictionary(g => g.Id);
        foreach (var last in acks.Where(a => a.Kind == "group").GroupBy(a => a.Id).Select(g => g.MaxBy(a => a.Epoch)!))
        {
            Assert.True(groups.TryGetValue(last.Id, out var group), $"group {last.Id} was acknowledged but is gone");
            Assert.True(group.Epoch >= last.Epoch, $"{last.Id} is at epoch {group.Epoch}, but {last.Epoch} was acknowledged");
            if (group.Epoch == last.Epoch)
                Assert.Equal(last.Members, group.Members);
        }
    }
}
