using Akka.Actor;
using Akka.Configuration;
using Cpns.Actors.Security;

namespace Cpns.Actors;

/// <summary>The enabler's settings, read once from the <c>cpns</c> section of the HOCON configuration.</summary>
public sealed record CpnsSettings
{
    public required string ServerId { get; init; }
    public required RegistrationSettings Registration { get; init; }
    public required TimeoutSettings Timeouts { get; init; }
    public required DirectorySettings Directory { get; init; }
    public required KeySettings Keys { get; init; }
    public required LoadSettings Load { get; init; }
    public required ConnectionSettings Connections { get; init; }
    public required DiscoverySettings Discovery { get; init; }
    public required StatusSettings Status { get; init; }
    public required SecuritySettings Security { get; init; }
    public required DeliverySettings Delivery { get; init; }
    public required ClusterSettings Cluster { get; init; }
    public required UsageSettings Usage { get; init; }
    public required ChargingSettings Charging { get; init; }
    public required PersistenceSettings Persistence { get; init; }

    public static CpnsSettings From(Config config)
    {
        var c = config.GetConfig("cpns") ?? throw new ConfigurationException("missing the 'cpns' configuration section");
        var envelopeMax = (int)(c.GetByteSize("security.envelope-max-payload") ?? 262144);
        var maxContent = (int)(c.GetByteSize("delivery.max-content") ?? 131072);
        if (maxContent <= 0 || maxContent / 3 * 4 + 8192 > envelopeMax)
            throw new ConfigurationException(
                $"cpns.delivery.max-content ({maxContent} bytes) must fit base64-encoded in cpns.security.envelope-max-payload ({envelopeMax} bytes)");
        var unitBytes = c.GetLong("charging.unit-bytes");
        if (unitBytes <= 0)
            throw new ConfigurationException("cpns.charging.unit-bytes must be positive");
        var lkhThreshold = c.GetInt("keys.lkh-threshold");
        if (lkhThreshold < 0)
            throw new ConfigurationException($"cpns.keys.lkh-threshold is a number of PN GWs (0 or more), not {lkhThreshold}");
        var rates = new Dictionary<string, decimal>(StringComparer.Ordinal);
        if (c.HasPath("charging.rates"))
            foreach (var (serviceId, _) in c.GetConfig("charging.rates").AsEnumerable())
                rates[serviceId.Trim('"')] = Rate(c.GetString($"charging.rates.{serviceId}"), $"cpns.charging.rates.{serviceId}");
        return new CpnsSettings
        {
            ServerId = c.GetString("server-id"),
            Registration = new RegistrationSettings
            {
                DefaultLifetime = c.GetTimeSpan("registration.default-lifetime"),
                MinLifetime = c.GetTimeSpan("registration.min-lifetime"),
                MaxLifetime = c.GetTimeSpan("registration.max-lifetime"),
                BatchWindow = c.GetTimeSpan("registration.batch-window"),
                BatchMax = c.GetInt("registration.batch-max"),
                CleanerInterval = c.GetTimeSpan("registration.cleaner-interval"),
                CleanerBatch = c.GetInt("registration.cleaner-batch"),
                RetryInitial = c.GetTimeSpan("registration.retry-initial"),
                RetryMax = c.GetTimeSpan("registration.retry-max"),
            },
            Timeouts = new TimeoutSettings(c.GetTimeSpan("timeouts.ask"), c.GetTimeSpan("timeouts.device-relay"),
                c.GetTimeSpan("timeouts.batch-reply"), c.GetTimeSpan("timeouts.node-start"), c.GetTimeSpan("timeouts.server-join")),
            Directory = new DirectorySettings
            {
                Distributed = c.GetString("directory.mode", "central") switch
                {
                    "central" => false,
                    "distributed" => true,
                    var other => throw new ConfigurationException($"cpns.directory.mode is central or distributed, not '{other}'"),
                },
                CacheTtl = c.GetTimeSpan("directory.cache-ttl"),
                GrantLifetime = c.GetTimeSpan("directory.grant-lifetime"),
                DefaultLifetime = c.GetTimeSpan("directory.default-lifetime"),
                MaxPage = c.GetInt("directory.max-page"),
                FanOutTimeout = c.GetTimeSpan("directory.fan-out-timeout"),
                PeerPublishWindow = c.GetTimeSpan("directory.peer-publish-window"),
            },
            Keys = new KeySettings
            {
                GraceWindow = c.GetTimeSpan("keys.grace-window"),
                RekeyInterval = c.GetTimeSpan("keys.rekey-interval"),
                LkhThreshold = lkhThreshold,
                PushTimeout = c.GetTimeSpan("keys.push-timeout"),
                PushTimeoutMax = c.GetTimeSpan("keys.push-timeout-max"),
                PnFanoutCoalesce = c.GetTimeSpan("keys.pn-fanout-coalesce"),
                PullRetryInitial = c.GetTimeSpan("keys.pull-retry-initial"),
                PullRetryMax = c.GetTimeSpan("keys.pull-retry-max"),
                PullMaxAttempts = c.GetInt("keys.pull-max-attempts"),
                PullOnDemand = c.GetBoolean("keys.pull-on-demand"),
            },
            Load = new LoadSettings
            {
                BusyMailboxDepth = Math.Max(0, c.GetInt("load.busy-mailbox-depth")),
                MaxBusyAnswers = Math.Max(0, c.GetInt("load.max-busy-answers")),
                RegistrationsInProgress = Math.Max(0, c.GetInt("load.registrations-in-progress")),
                BusyLag = c.GetTimeSpan("load.busy-lag"),
            },
            Connections = new ConnectionSettings
            {
                HeartbeatInterval = c.GetTimeSpan("connections.heartbeat-interval"),
                MissedHeartbeats = c.GetInt("connections.missed-heartbeats"),
                DownlinkQueue = c.GetInt("connections.downlink-queue"),
                RestartSpread = c.GetTimeSpan("connections.restart-spread"),
            },
            Discovery = new DiscoverySettings
            {
                ScanWindow = c.GetTimeSpan("discovery.scan-window"),
                PlaceHeldAfterScan = c.GetTimeSpan("discovery.place-held-after-scan"),
            },
            Status = new StatusSettings
            {
                Coalesce = c.GetTimeSpan("status.coalesce"),
                MaxSubscriptions = c.GetInt("status.max-subscriptions"),
            },
            Security = new SecuritySettings
            {
                AllowKeyExport = c.GetBoolean("security.allow-key-export"),
                EnvelopeMaxSkew = c.GetTimeSpan("security.envelope-max-skew"),
                EnvelopeMaxPayloadBytes = envelopeMax,
                Sessions = new SessionPolicy(c.GetBoolean("security.sessions.enabled"),
                    Math.Max(1, c.GetInt("security.sessions.after-messages")),
                    new SessionLimits(c.GetTimeSpan("security.sessions.lifetime"), Math.Max(1, c.GetLong("security.sessions.max-records"))),
                    Math.Max(1, c.GetInt("security.sessions.max-pending")), c.GetTimeSpan("security.sessions.handshake-timeout")),
                CredentialValidity = c.GetTimeSpan("security.credential-validity"),
                AuthenticationTimeout = c.GetTimeSpan("security.authentication-timeout"),
            },
            Delivery = new DeliverySettings
            {
                MaxContentBytes = maxContent,
            },
            Cluster = new ClusterSettings
            {
                KeyManagerRetry = c.GetTimeSpan("cluster.key-manager-retry"),
                KeyManagerShards = Math.Max(1, c.GetInt("cluster.key-manager-shards")),
                StatusTimeout = c.GetTimeSpan("cluster.status-timeout"),
                ResolveTimeout = c.GetTimeSpan("cluster.resolve-timeout"),
            },
            Usage = new UsageSettings
            {
                ReportInterval = c.GetTimeSpan("usage.report-interval"),
            },
            Charging = new ChargingSettings
            {
                Currency = c.GetString("charging.currency"),
                UnitBytes = unitBytes,
                DefaultRate = Rate(c.GetString("charging.default-rate"), "cpns.charging.default-rate"),
                Rates = rates,
            },
            Persistence = new PersistenceSettings
            {
                JournalPlugin = c.GetString("persistence.journal-plugin", ""),
                SnapshotPlugin = c.GetString("persistence.snapshot-plugin", ""),
                SnapshotEvery = c.GetInt("persistence.snapshot-every"),
            },
        };
    }

    private static decimal Rate(string text, string path) =>
        decimal.TryParse(text, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var rate) &&
        rate >= 0
            ? rate
            : throw new ConfigurationException($"{path} is a rate per unit (a non-negative number), not '{text}'");

    public static CpnsSettings From(ActorSystem system) => From(system.Settings.Config);

    /// <summary>Clamps a requested lease lifetime (seconds; 0 or less means "the default").</summary>
    public int ClampLifetime(int requestedSeconds)
    {
        if (requestedSeconds <= 0)
            return (int)Registration.DefaultLifetime.TotalSeconds;
        return (int)Math.Clamp(requestedSeconds, Registration.MinLifetime.TotalSeconds, Registration.MaxLifetime.TotalSeconds);
    }
}

/// <summary><c>cpns.timeouts</c>: how long a function waits for an answer before it answers "timed out" itself.</summary>
public sealed record TimeoutSettings(TimeSpan Ask, TimeSpan DeviceRelay, TimeSpan BatchReply, TimeSpan NodeStart, TimeSpan ServerJoin);

/// <summary><c>cpns.keys</c>: how group keys are kept, rekeyed and delivered (push and pull).</summary>
public sealed record KeySettings
{
    public required TimeSpan GraceWindow { get; init; }
    public required TimeSpan RekeyInterval { get; init; }
    public required int LkhThreshold { get; init; }
    public required TimeSpan PushTimeout { get; init; }
    public required TimeSpan PushTimeoutMax { get; init; }
    public required TimeSpan PnFanoutCoalesce { get; init; }
    public required TimeSpan PullRetryInitial { get; init; }
    public required TimeSpan PullRetryMax { get; init; }
    public Common.Backoff PullBackoff => new(PullRetryInitial, PullRetryMax);
    public required int PullMaxAttempts { get; init; }
    public required bool PullOnDemand { get; init; }
}

/// <summary><c>cpns.registration</c>: leases, the batches a PN GW forwards, the lease cleaner, and re-registration.</summary>
public sealed record RegistrationSettings
{
    public required TimeSpan DefaultLifetime { get; init; }
    public required TimeSpan MinLifetime { get; init; }
    public required TimeSpan MaxLifetime { get; init; }
    public required TimeSpan BatchWindow { get; init; }
    public required int BatchMax { get; init; }
    public required TimeSpan CleanerInterval { get; init; }
    public required int CleanerBatch { get; init; }
    public required TimeSpan RetryInitial { get; init; }
    public required TimeSpan RetryMax { get; init; }
    public Common.Backoff Backoff => new(RetryInitial, RetryMax);
}

/// <summary><c>cpns.directory</c>: where services are kept (central, or distributed over the PN GWs) and how searches go.</summary>
public sealed record DirectorySettings
{
    public required bool Distributed { get; init; }
    public required TimeSpan CacheTtl { get; init; }
    public required TimeSpan GrantLifetime { get; init; }
    public required TimeSpan DefaultLifetime { get; init; }
    public required int MaxPage { get; init; }
    public required TimeSpan FanOutTimeout { get; init; }
    public required TimeSpan PeerPublishWindow { get; init; }
}

/// <summary><c>cpns.load</c>: when a server function on the hot path turns requests away with "busy, retry after".</summary>
public sealed record LoadSettings
{
    public required int BusyMailboxDepth { get; init; }
    public required int MaxBusyAnswers { get; init; }

    /// <summary>How many PNEs a PN GW takes in at once, from its answer to their scan until the server's answer (0: no bound).</summary>
    public required int RegistrationsInProgress { get; init; }

    /// <summary>A node whose actors wait longer than this for a thread says it is busy to PNEs that scan for it (zero: never).</summary>
    public required TimeSpan BusyLag { get; init; }
}

/// <summary><c>cpns.connections</c>: keep-alives, downlink queues and re-registration spread.</summary>
public sealed record ConnectionSettings
{
    public required TimeSpan HeartbeatInterval { get; init; }
    public required int MissedHeartbeats { get; init; }
    public required int DownlinkQueue { get; init; }
    public required TimeSpan RestartSpread { get; init; }
}

/// <summary><c>cpns.discovery</c>: how a PNE scans for PN GWs.</summary>
public sealed record DiscoverySettings
{
    public required TimeSpan ScanWindow { get; init; }
    public required TimeSpan PlaceHeldAfterScan { get; init; }
}

/// <summary><c>cpns.status</c>: status watching.</summary>
public sealed record StatusSettings
{
    public required TimeSpan Coalesce { get; init; }
    public required int MaxSubscriptions { get; init; }
}

/// <summary><c>cpns.security</c>: envelopes, sessions, credentials and challenges.</summary>
public sealed record SecuritySettings
{
    public required bool AllowKeyExport { get; init; }
    public required TimeSpan EnvelopeMaxSkew { get; init; }
    public required int EnvelopeMaxPayloadBytes { get; init; }
    public required SessionPolicy Sessions { get; init; }
    public required TimeSpan CredentialValidity { get; init; }
    public required TimeSpan AuthenticationTimeout { get; init; }
}

/// <summary><c>cpns.delivery</c>: content delivery.</summary>
public sealed record DeliverySettings
{
    public required int MaxContentBytes { get; init; }
}

/// <summary><c>cpns.cluster</c>: the distributed topology's Group Key Managers.</summary>
public sealed record ClusterSettings
{
    public required TimeSpan KeyManagerRetry { get; init; }
    public required int KeyManagerShards { get; init; }
    public required TimeSpan StatusTimeout { get; init; }
    public required TimeSpan ResolveTimeout { get; init; }
}

/// <summary><c>cpns.usage</c>: usage reports.</summary>
public sealed record UsageSettings
{
    public required TimeSpan ReportInterval { get; init; }
}

/// <summary><c>cpns.charging</c>: charging records.</summary>
public sealed record ChargingSettings
{
    public required string Currency { get; init; }
    public required long UnitBytes { get; init; }
    public required decimal DefaultRate { get; init; }
    public required IReadOnlyDictionary<string, decimal> Rates { get; init; }
}

/// <summary><c>cpns.persistence</c>: journal, snapshots.</summary>
public sealed record PersistenceSettings
{
    public required string JournalPlugin { get; init; }
    public required string SnapshotPlugin { get; init; }
    public required int SnapshotEvery { get; init; }
}
