namespace Cpns.Actors.Protocol;

public enum FlowKind
{
    Pull,
    Push,
    Revoke,
}

/// <summary>Which part of a key flow: server → PN GW (CPNS-2/3/4, steps 1–11), or PN GW → PNE (CPNS-1, from step 7).</summary>
public enum FlowLeg
{
    ServerToGateway,
    GatewayToPne,
}

/// <summary>One numbered step of a key flow (seed Appendix C), published on the event stream by the sender.</summary>
public sealed record FlowStep(
    string GroupId,
    long Epoch,
    int Step,
    string From,
    string To,
    FlowKind Kind,
    FlowLeg Leg) : ICpnsMessage, IWithGroupId
{
    /// <summary>When the step was sent (<see cref="System.Diagnostics.Stopwatch"/> ticks of this process), not when a subscriber heard it.</summary>
    public long SentAt { get; init; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public override string ToString() => $"{Kind}/{Leg} {GroupId}#{Epoch} step {Step}: {From} -> {To}";
}

/// <summary>A holder (PN GW or PNE) installed a group key; published on the event stream.</summary>
public sealed record KeyInstalled(
    string GroupId,
    long Epoch,
    string HolderId,
    DeliveryMode Mode,
    bool IsMember,
    Octets KeyCheck) : ICpnsMessage, IWithGroupId
{
    /// <summary>When the key was installed (<see cref="System.Diagnostics.Stopwatch"/> ticks of this process), not when a subscriber heard it.</summary>
    public long InstalledAt { get; init; } = System.Diagnostics.Stopwatch.GetTimestamp();
}
