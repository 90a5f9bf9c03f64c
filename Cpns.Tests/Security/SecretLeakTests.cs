using Cpns.Actors.Local;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Security;

/// <summary>
/// No key in clear anywhere it could be read later: every event persisted (a real SQLite journal, scanned as
/// bytes) and every log line of a run with all the flows, refusals included.
/// </summary>
public sealed class SecretLeakTests : CpnsTestKit
{
    private static readonly ThreadLocal<TempFolder> NextFolder = new(() => new TempFolder("cpns-leak"));
    private readonly TempFolder _folder;

    public SecretLeakTests(ITestOutputHelper output)
        : base(output, Storage.Sqlite(NextFolder.Value!.File("cpns.db")).WithFallback(
            Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = DEBUG\ncpns.keys.lkh-threshold = 1")))
    {
        _folder = NextFolder.Value!;
        NextFolder.Value = new TempFolder("cpns-leak");
    }

    protected override void AfterAll()
    {
        base.AfterAll();
        _folder.Dispose();
    }

    private static IEnumerable<byte[]> Forms(byte[] key)
    {
        yield return key;
        yield return Encoding.UTF8.GetBytes(Convert.ToBase64String(key));
        yield return Encoding.UTF8.GetBytes(Convert.ToHexString(key));
        yield return Encoding.UTF8.GetBytes(Convert.ToHexStringLower(key));
    }

    [Fact]
    public async Task Neither_the_journal_nor_the_logs_hold_a_raw_key()
    {
        var logs = CreateTestProbe();
        Sys.EventStream.Subscribe(logs.Ref, typeof(LogEvent));
        await StartNetworkAsync(["g1", "g2"], new Dictionary<string, string> { ["p1"] = "g1", ["p2"] = "g2", ["p3"] = "g2" });

        var keys = new List<byte[]>();
        foreach (var (group, mode) in new[] { ("pushed", DeliveryMode.Push), ("pulled", DeliveryMode.Pull) })
        {
            Server.Smf.Tell(new LocalRequest(new CreateGroup(group, "p1", mode, ["p1", "p2"])), TestActor);
            await ExpectMsgAsync<GroupAccepted>(Timeout);
            keys.Add(await ExportedKeyAsync(Server.Cskmf, group, 1));
            Server.Smf.Tell(new LocalRequest(new AddMember(group, "p1", "p3")), TestActor);
            await ExpectMsgAsync<GroupAccepted>(Timeout);
            Server.Smf.Tell(new LocalRequest(new RemoveMember(group, "p1", "p2")), TestActor);
            var last = await ExpectMsgAsync<GroupAccepted>(Timeout);
            keys.Add(await ExportedKeyAsync(Server.Cskmf, group, 2));
            keys.Add(await ExportedKeyAsync(Server.Cskmf, group, last.Epoch));
            await AwaitAssertAsync(async () => Assert.Equal(last.Epoch, (await KeyStateAsync(Pnes["p3"], group)).CurrentEpoch), Timeout);
        }

        // The push group reaches both PN GWs, more than the LKH threshold of 1: its tree's keys (leaves and root) too.
        foreach (var gateway in new[] { "g1", "g2" })
        {
            var (_, path) = await ExportedPathAsync(Server.Cskmf, "pushed", gateway);
            Assert.Equal(2, path.Count); // its leaf and the root
            keys.AddRange(path.Select(k => k.Key));
        }

        // Refusals log too: a bad request and a stranger's key request.
        Server.Smf.Tell(new LocalRequest(new AddMember("pushed", "p2", "p2")), TestActor);
        await ExpectMsgAsync<GroupRejected>(Timeout);
        Server.Cskmf.Tell(SealAs("g1", new GroupKeyRequest("pulled", 3, "g1")), TestActor);
        await ExpectMsgAsync<object>(Timeout);

        keys.Add(Secrets.Kek.Export());
        keys.Add(Secrets.Identity.ExportSigningPrivateKey());
        keys.Add(Secrets.Identity.ExportAgreementPrivateKey());
        keys.Add(Secrets.Authority.ExportPrivateKey());
        Assert.All(keys, k => Assert.Equal(32, k.Length));

        var lines = new StringBuilder();
        while (await logs.ReceiveOneAsync(TimeSpan.FromMilliseconds(300)) is LogEvent log)
            lines.AppendLine(log.ToString());
        var logBytes = Encoding.UTF8.GetBytes(lines.ToString());
        Assert.True(logBytes.Length > 1000, "the run should have logged something to scan");

        await Sys.Terminate();
        var journal = Directory.GetFiles(_folder.Path).SelectMany(File.ReadAllBytes).ToArray();
        Assert.True(journal.AsSpan().IndexOf("GroupEpochIssuedEvent"u8) >= 0, "the key epochs are in the journal");
        Assert.True(journal.AsSpan().IndexOf("KeyUnderRoot"u8) >= 0, "the LKH tree is in the journal");

        foreach (var key in keys)
        {
            foreach (var form in Forms(key))
            {
                Assert.True(journal.AsSpan().IndexOf(form) < 0, "a key is in the journal in clear");
                Assert.True(logBytes.AsSpan().IndexOf(form) < 0, "a key is in the log in clear");
            }
        }
    }
}
