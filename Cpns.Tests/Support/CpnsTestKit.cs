using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Xunit;
using Xunit.Abstractions;

namespace Cpns.Tests.Support;

/// <summary>
/// A TestKit whose actor system runs the enabler's real configuration with every message serialized
/// (<c>serialize-messages = on</c>), an in-memory journal, and key export on so tests can compare key bytes.
/// </summary>
public abstract class CpnsTestKit : TestKit
{
    public const string TestConfig = """
        akka.loglevel = INFO
        akka.actor.serialize-messages = on
        akka.actor.serialize-creators = off
        cpns.security.allow-key-export = on
        cpns.registration.batch-window = 5ms
        # How far behind a test machine's threads run varies from run to run: only the tests of it answer "busy" for it.
        cpns.load.busy-lag = 0s
        """;

    /// <summary>
    /// On a two-core machine the thread pool starts with two workers and adds about one per 500 ms once they are busy;
    /// a test that starts a few dozen actors (a network's persistent functions recovering at once) could then sit
    /// still for seconds. Starting with more workers removes that ramp (Akka.NET does the same in its own suites).
    /// </summary>
    static CpnsTestKit()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }

    protected CpnsTestKit(ITestOutputHelper output, string extraConfig = "")
        : this(output, ConfigurationFactory.ParseString(extraConfig))
    {
    }

    /// <summary>With a configuration of the test's own on top (e.g. a real database for the journal).</summary>
    protected CpnsTestKit(ITestOutputHelper output, Config extraConfig)
        : base(Config(extraConfig), "cpns", output)
    {
        Settings = CpnsSettings.From(Sys);
    }

    public static Config Config(string extraConfig = "") => Config(ConfigurationFactory.ParseString(extraConfig));

    public static Config Config(Config extraConfig)
    {
        var test = ConfigurationFactory.ParseString(TestConfig);
        // A test that brings its own journal keeps it; the in-memory one is only the default.
        if (!extraConfig.HasPath("akka.persistence.journal.plugin"))
            test = test.WithFallback(ConfigurationFactory.ParseString(CpnsConfig.Text("persistence-memory")));
        return extraConfig.WithFallback(test).WithFallback(CpnsConfig.Load());
    }

    protected CpnsSettings Settings { get; }

    protected ServerEndpoints Server { get; private set; } = null!;

    private ServerSecrets? _secrets;

    protected ServerSecrets Secrets => _secrets ??= ServerSecrets.Generate(Settings.ServerId);

    protected Dictionary<string, IActorRef> Gateways { get; } = new();

    protected Dictionary<string, IActorRef> Pnes { get; } = new();

    protected Dictionary<string, EntityIdentity> Identities { get; } = new();

    protected TimeSpan Timeout => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>Starts a server, the PN GWs, and PNEs (id → PN GW id), and waits until all are registered.</summary>
    protected async Task StartNetworkAsync(IEnumerable<string> gateways, IReadOnlyDictionary<string, string> pnes,
        EntityKind gatewayKind = EntityKind.PnGateway, IReadOnlyDictionary<string, SecurityLevel>? pnSecurity = null)
    {
        await StartServerAsync();
        foreach (var gatewayId in gateways)
            StartGateway(gatewayId, gatewayKind, pnSecurity?.GetValueOrDefault(gatewayId, SecurityLevel.High) ?? SecurityLevel.High);

        await AwaitRegisteredAsync(Gateways.Values);
        foreach (var (pneId, gatewayId) in pnes)
            StartPne(pneId, gatewayId);

        await AwaitRegisteredAsync(Pnes.Values);
        await AwaitAssertAsync(async () =>
        {
            var inventory = await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
            Assert.Equal(Pnes.Count, inventory.Pnes.Count);
        }, Timeout);
    }

    protected IActorRef ServerActor { get; private set; } = ActorRefs.Nobody;

    /// <param name="keyManagers">The distributed topology: the Group Key Managers' shard region (proxy).</param>
    protected async Task StartServerAsync(KeyManagerRegion? keyManagers = null)
    {
        ServerActor = WhenNameFree(() => Deployment.StartServer(Sys, Secrets, Settings, keyManagers));
        Server = await Deployment.EndpointsOf(ServerActor, Timeout);
    }

    /// <summary>Stops the server entity and starts it again (same secrets, same journal): a server restart.</summary>
    protected async Task RestartServerAsync()
    {
        var watcher = CreateTestProbe();
        watcher.Watch(ServerActor);
        Sys.Stop(ServerActor);
        await watcher.ExpectTerminatedAsync(ServerActor, Timeout);
        await StartServerAsync();
    }

    protected IActorRef StartGateway(string gatewayId, EntityKind kind = EntityKind.PnGateway,
        SecurityLevel pnSecurity = SecurityLevel.High, int lifetimeSeconds = 0, SecurityLevel? pnSecurityCeiling = null)
    {
        var identity = Identities.TryGetValue(gatewayId, out var known) ? known : EntityIdentity.Generate(gatewayId, kind);
        Identities[gatewayId] = identity;
        var token = EnrolmentTokenFor(gatewayId, kind, pnSecurityCeiling);
        return Gateways[gatewayId] = WhenNameFree(() => Deployment.StartGateway(Sys, identity, Secrets.TrustAnchor, Server.Registry, Settings,
            DeviceCapabilities.Gateway(pnSecurity), lifetimeSeconds, token));
    }

    private readonly Dictionary<string, string> _enrolmentTokens = new(StringComparer.Ordinal);

    /// <summary>
    /// The test plays the operator: a device it starts for the first time is provisioned at the registry (the registry
    /// takes it before the device's hello, which is sent later); a device started again keeps its token.
    /// </summary>
    protected string EnrolmentTokenFor(string deviceId, EntityKind kind, SecurityLevel? pnSecurityCeiling = null)
    {
        if (_enrolmentTokens.TryGetValue(deviceId, out var token))
            return token;
        (token, var provision) = Enrolment.Provision(deviceId, kind, long.MaxValue, pnSecurityCeiling);
        _enrolmentTokens[deviceId] = token;
        Server.Registry.Tell(new ProvisionDevices([provision]), ActorRefs.Nobody);
        return token;
    }

    /// <summary>Starts a PNE (with the identity it had, if it ran before) that registers through <paramref name="gatewayId"/>.</summary>
    protected IActorRef StartPne(string pneId, string gatewayId, int lifetimeSeconds = 0, string? actorName = null)
    {
        var identity = Identities.TryGetValue(pneId, out var known) ? known : EntityIdentity.Generate(pneId, EntityKind.Pne);
        Identities[pneId] = identity;
        var token = EnrolmentTokenFor(pneId, EntityKind.Pne);
        return Pnes[pneId] = actorName is null
            ? WhenNameFree(() => Deployment.StartPne(Sys, identity, Secrets.TrustAnchor, Gateways[gatewayId], Settings,
                lifetimeSeconds: lifetimeSeconds, enrolmentToken: token))
            : Sys.ActorOf(Cpns.Actors.Pne.PneEntity.Props(identity, Secrets.TrustAnchor, Gateways[gatewayId], Settings,
                lifetimeSeconds: lifetimeSeconds, enrolmentToken: token), actorName);
    }

    /// <summary>
    /// Starts an entity under its fixed name. After a stop, the watcher may hear Terminated a moment before the guardian
    /// has let go of the name, so a name still taken is tried again, for at most the test timeout.
    /// </summary>
    protected IActorRef WhenNameFree(Func<IActorRef> start)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            try
            {
                return start();
            }
            catch (InvalidActorNameException) when (DateTime.UtcNow < deadline)
            {
                SpinWait.SpinUntil(() => false, 10);
            }
        }
    }

    /// <summary>
    /// Holds <paramref name="function"/> (its mailbox fills, nothing is processed) while <paramref name="whileHeld"/> runs,
    /// then lets it go on: the deterministic way to put messages behind one another or to leave a request unanswered.
    /// </summary>
    protected static async Task WhileHeldAsync(IActorRef function, Func<ICell, Task> whileHeld)
    {
        var cell = ((ActorRefWithCell)function).Underlying;
        cell.Suspend();
        try
        {
            await whileHeld(cell);
        }
        finally
        {
            cell.Resume(null!);
        }
    }

    protected async Task AwaitRegisteredAsync(IEnumerable<IActorRef> entities)
    {
        foreach (var entity in entities)
        {
            await AwaitAssertAsync(async () =>
            {
                var status = await entity.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout);
                Assert.True(status.Registered, $"{status.DeviceId} is not registered yet");
            }, Timeout, Dilated(TimeSpan.FromMilliseconds(20)));
        }
    }

    /// <summary>
    /// On the test scheduler, what a tick set off is not done when <c>Advance</c> returns. A round trip through every
    /// live PNE, then every live PN GW, then the server's registry lets each handle what the tick made the one before
    /// it send (local mailboxes keep that order), so the clock never runs ahead of messages still on their way.
    /// </summary>
    protected async Task SettledAsync()
    {
        foreach (var entity in Pnes.Values.Concat(Gateways.Values).Where(e => !_stopped.Contains(e)))
            await entity.Ask<RegistrationStatus>(GetRegistrationStatus.Instance, Timeout);
        await Server.Registry.Ask<Inventory>(GetInventory.Instance, Timeout);
    }

    private readonly HashSet<IActorRef> _stopped = new();

    /// <summary>Stops a PNE or PN GW and waits until it is gone, so no timer of its fires afterwards.</summary>
    protected async Task StopEntityAsync(IActorRef entity)
    {
        var watcher = CreateTestProbe();
        watcher.Watch(entity);
        Sys.Stop(entity);
        await watcher.ExpectTerminatedAsync(entity, Timeout);
        _stopped.Add(entity);
    }

    protected IActorRef Entity(string id) => Pnes.TryGetValue(id, out var pne) ? pne : Gateways[id];

    protected async Task<T> AskAsync<T>(ICanTell target, object message) =>
        target switch
        {
            IActorRef actor => await actor.Ask<T>(message, Timeout),
            _ => throw new ArgumentException("only actor refs", nameof(target)),
        };

    /// <summary>The raw key bytes a holder has for an epoch, exported wrapped for a throwaway test identity and unwrapped here.</summary>
    protected async Task<byte[]> ExportedKeyAsync(IActorRef holder, string groupId, long epoch)
    {
        var auditor = EntityIdentity.Generate("auditor", EntityKind.Server);
        var reply = await holder.Ask<object>(new ExportGroupKey(groupId, epoch, auditor.DeviceId, auditor.PublicKeys.Agreement),
            Timeout);
        var exported = Assert.IsType<ExportedGroupKey>(reply);
        var key = GroupKey.UnwrapFrom(new PairwiseKeys(auditor), exported.ExporterId, exported.ExporterAgreementKey, exported.WrappedKey,
            groupId, epoch);
        Assert.NotNull(key);
        return key.Material.ToArray();
    }

    /// <summary>
    /// An LKH path (position, size, leaf and ancestor keys) as a key holder keeps it for <paramref name="memberId"/>,
    /// exported sealed for a throwaway test identity and opened here.
    /// </summary>
    protected async Task<(LkhPath Path, IReadOnlyList<(int Node, byte[] Key)> Keys)> ExportedPathAsync(IActorRef holder, string groupId,
        string memberId)
    {
        var auditor = EntityIdentity.Generate("auditor", EntityKind.Server);
        var reply = await holder.Ask<object>(new ExportLkhPath(groupId, memberId, auditor.DeviceId, auditor.PublicKeys.Agreement), Timeout);
        var exported = Assert.IsType<ExportedLkhPath>(reply);
        var keys = exported.Path.Open(new PairwiseKeys(auditor), exported.ExporterId, exported.ExporterAgreementKey, groupId);
        Assert.NotNull(keys);
        return (exported.Path, keys);
    }

    /// <summary>Seals a message as the entity <paramref name="signerId"/> would (tests play entities this way).</summary>
    /// <summary>Each call is a fresh sending function (its own channel), unless a channel is named.</summary>
    protected SignedEnvelope SealAs(string signerId, object message, string? channel = null) =>
        SealAs(Identities[signerId], message, channel);

    protected SignedEnvelope SealAs(EntityIdentity signer, object message, string? channel = null) =>
        new EnvelopeSealer(signer, channel ?? $"test#{Guid.NewGuid():N}", Sys).Seal(message);

    /// <summary>The payload of an envelope a test received (tests read answers without playing the verifier).</summary>
    protected T Unseal<T>(object envelope)
    {
        var sealedEnvelope = Assert.IsType<SignedEnvelope>(envelope);
        return Assert.IsAssignableFrom<T>(Sys.Serialization.Deserialize(sealedEnvelope.Payload.ToArray(),
            Cpns.Actors.Serialization.ProtocolSerializer.SerializerId, sealedEnvelope.Manifest));
    }

    protected async Task<T> ExpectSealedAsync<T>(Akka.TestKit.TestProbe? probe = null) =>
        Unseal<T>(await (probe ?? (Akka.TestKit.TestKitBase)this).ExpectMsgAsync<SignedEnvelope>(Timeout));

    protected Task<HeldGroupKey> KeyStateAsync(IActorRef holder, string groupId) =>
        holder.Ask<HeldGroupKey>(new GetKeyState(groupId), Timeout);
}
