using Cpns.Actors.Security;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Simulation;

/// <summary>What <c>cpns simulate</c> builds and does.</summary>
public sealed record SimulationOptions
{
    public int Gateways { get; init; } = 10;
    public int Pnes { get; init; } = 200;
    public int Groups { get; init; } = 5;
    public int Seed { get; init; } = 1;

    /// <summary>Average members per group; 0 picks about two PN-wide "shares" per group (2·PNEs/groups, at most 400).</summary>
    public int MembersPerGroup { get; init; }

    /// <summary>Membership changes per group after creation (alternating joins and leaves).</summary>
    public int ChurnPerGroup { get; init; } = 4;

    /// <summary>
    /// Group changes (creations, then joins and leaves) started per second, evenly spaced, as a network's operators would
    /// make them; 0 starts each phase's changes all at once (a storm, to measure throughput rather than delivery time).
    /// </summary>
    public double ChangeRate { get; init; } = 20;

    /// <summary>How many of the PN GWs are BOTH devices (also PNEs of their own PN: group members, senders and receivers).</summary>
    public int BothDevices { get; init; }

    /// <summary>Devices without CPNS features, each represented by a PN GW (which runs a PNE for it): group members like PNEs.</summary>
    public int LegacyDevices { get; init; }

    /// <summary>After the keys converge, every group's first member sends it one piece of content, which every other member must open.</summary>
    public bool Content { get; init; }

    /// <summary>PNEs asleep while the content is sent (their PN GWs hold it for them), woken once it is all accepted.</summary>
    public int SleepingPnes { get; init; }

    /// <summary>How long to wait for every member to hold its group's current key.</summary>
    public TimeSpan ConvergenceTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long the run waits for one answer of the simulated network (a registration batch, a key state).</summary>
    public TimeSpan AskTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the run looks again at a phase's progress.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A phase that makes no progress for this long (or a group change not answered in it) ends the run.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromMinutes(2);

    public string? Validate()
    {
        if (Gateways < 1)
            return "--gateways must be at least 1";
        if (Pnes < 1)
            return "--pnes must be at least 1";
        if (Groups < 0)
            return "--groups must not be negative";
        if (MembersPerGroup < 0)
            return "--members-per-group must not be negative";
        if (ChurnPerGroup < 0)
            return "--churn must not be negative";
        if (ChangeRate < 0 || double.IsNaN(ChangeRate) || double.IsInfinity(ChangeRate))
            return "--change-rate must be a number of changes per second, at least 0";
        if (BothDevices < 0 || BothDevices > Gateways)
            return $"--both must be between 0 and the number of PN GWs ({Gateways})";
        if (LegacyDevices < 0 || LegacyDevices > 100_000)
            return "--legacy must be between 0 and 100000";
        if (SleepingPnes < 0 || SleepingPnes > Pnes)
            return $"--sleeping must be between 0 and the number of PNEs ({Pnes})";
        if (SleepingPnes > 0 && !Content)
            return "--sleeping needs --content: PNEs sleep while content is sent to them";
        if (Gateways > 100_000 || Pnes > 1_000_000 || Groups > 100_000)
            return "at most 100000 PN GWs, 1000000 PNEs and 100000 groups";
        return null;
    }

    public int EffectiveMembersPerGroup =>
        MembersPerGroup > 0 ? Math.Min(MembersPerGroup, Pnes) : Math.Clamp(2 * Pnes / Math.Max(1, Groups), 1, Math.Min(400, Pnes));
}

/// <summary>The outcome of a simulation run; serialized with exactly these JSON keys.</summary>
public sealed record SimulationResult
{
    public int Gateways { get; init; }
    public int Pnes { get; init; }
    public int Groups { get; init; }
    /// <summary>Group changes started per second in the run (0: each phase's all at once).</summary>
    public double ChangeRate { get; init; }
    public int Members { get; init; }
    public int MembersWithCurrentKey { get; init; }
    public long KeysDeliveredPush { get; init; }
    public long KeysDeliveredPull { get; init; }
    public long Epochs { get; init; }
    public double KeyDeliveryP50Ms { get; init; }
    public double KeyDeliveryP99Ms { get; init; }
    public double WallSeconds { get; init; }

    public double PushP50Ms { get; init; }
    public double PushP99Ms { get; init; }
    public double PushMaxMs { get; init; }
    public double PullP50Ms { get; init; }
    public double PullP99Ms { get; init; }
    public double PullMaxMs { get; init; }

    /// <summary>A new group's first key to its members (all groups made at once, so under the heaviest load of the run).</summary>
    public LatencySummary FirstKeyPush { get; init; } = LatencySummary.None;

    public LatencySummary FirstKeyPull { get; init; } = LatencySummary.None;

    /// <summary>Each later epoch's key to its members: the rekeys of membership churn.</summary>
    public LatencySummary RekeyPush { get; init; } = LatencySummary.None;

    public LatencySummary RekeyPull { get; init; } = LatencySummary.None;

    /// <summary>Seconds each phase took, by phase name, in order.</summary>
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();

    public double PneRegistrationsPerSecond { get; init; }

    /// <summary>Requests sent again for want of an answer, "busy" answers, and signed envelopes refused (all functions).</summary>
    public long Retries { get; init; }
    public long BusyAnswers { get; init; }
    public long EnvelopesRefused { get; init; }

    /// <summary>The retries and busy answers by the function that counted them (a SECA's key pull, a PN GW's admission, …).</summary>
    public IReadOnlyDictionary<string, long> RetriesByFunction { get; init; } = new Dictionary<string, long>();
    public IReadOnlyDictionary<string, long> BusyAnswersByFunction { get; init; } = new Dictionary<string, long>();

    /// <summary>Working set growth from before the first PN GW started to after the last PNE registered, per PNE.</summary>
    public double BytesPerPne { get; init; }

    /// <summary>
    /// The run's own count of cryptographic operations, their unit cost measured in the same process once the run is done
    /// (the code is then compiled at full speed), and the floor they make.
    /// </summary>
    public CryptoOperations.Counts? Crypto { get; init; }
    public CryptoOperations.UnitCosts? CryptoUnitCosts { get; init; }
    public double CryptoFloorSeconds { get; init; }
    public double WallOverFloor { get; init; }

    public int BothDevices { get; init; }
    public int LegacyDevices { get; init; }
    public int SleepingPnes { get; init; }

    /// <summary>Content sent (one per group), accepted by the server, copies due to members, and copies opened by them.</summary>
    public int ContentSent { get; init; }
    public int ContentAccepted { get; init; }
    public int ContentDue { get; init; }
    public int ContentOpened { get; init; }

    /// <summary>How the server's CSKMF delivered the keys (shown in the table; the JSON keeps the keys above).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public KeyDeliveryStats? Delivery { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool AllMembersCurrent => MembersWithCurrentKey == Members;

    [System.Text.Json.Serialization.JsonIgnore]
    public bool AllContentOpened => ContentAccepted == ContentSent && ContentOpened == ContentDue;
}

public enum SimulationPhase
{
    StartingServer,
    RegisteringGateways,
    RegisteringPnes,
    CreatingGroups,
    Churning,
    Converging,
    Verifying,
    DeliveringContent,
    Done,
}

public sealed record SimulationProgress(SimulationPhase Phase, long Done, long Total);

/// <summary>Something the server acknowledged during a simulation (and so made durable first).</summary>
public sealed record Acknowledgement(string Kind, string Id, string? RegistrationId, long? Epoch, IReadOnlyList<string>? Members);

/// <summary>A simulation that could not finish: the phase it stopped in, and why.</summary>
public sealed class SimulationStalledException(SimulationPhase phase, Exception cause)
    : Exception($"the run stopped in phase {phase}: {cause.Message}", cause)
{
    public SimulationPhase Phase { get; } = phase;
}

/// <summary>How long some deliveries took, from their epoch's first step to the member's install.</summary>
public sealed record LatencySummary(long Count, double P50Ms, double P99Ms, double MaxMs)
{
    public static readonly LatencySummary None = new(0, 0, 0, 0);

    public static LatencySummary Of(double[] sorted) => sorted.Length == 0
        ? None
        : new(sorted.Length, Math.Round(SimulationRunner.Percentile(sorted, 0.50), 3), Math.Round(SimulationRunner.Percentile(sorted, 0.99), 3),
            Math.Round(sorted[^1], 3));

    public override string ToString() => Count == 0 ? "none" : $"{P50Ms:0.#} / {P99Ms:0.#} / {MaxMs:0.#}";
}
