
namespace Cpns.Actors.Protocol;

// ---- Service / content delivery (seed §5.3.1.7): encrypted once per epoch, one message per PN GW ----

public enum DeliveryError
{
    InvalidRequest,
    TooLarge,
    UnknownGroup,
    NotAMember,
    NotAuthorized,
    StaleEpoch,
    NoKey,
    Duplicate,
}

/// <summary>
/// Content for a service group, or for one member of it (<paramref name="TargetDeviceId"/>), from a local sender
/// (an Application/Content Entity on CPNS-5, or the operator): the server's CSKMF encrypts it once under the group's
/// current epoch key, with <paramref name="SenderId"/> bound as associated data.
/// </summary>
public sealed record DeliverContent(
    string DeliveryId,
    string SenderId,
    string ServiceId,
    string GroupId,
    Octets Payload,
    string? TargetDeviceId = null) : INodeLocal, IWithGroupId;

/// <summary>
/// Content a PNE encrypted itself under the group's current epoch key (it is the sender in the associated data),
/// sent signed through its PN GW to the server's delivery function.
/// </summary>
public sealed record PostContent(string DeliveryId, string ServiceId, GroupCiphertext Ciphertext, string? TargetDeviceId = null)
    : ICpnsMessage, IWithGroupId
{
    public string GroupId => Ciphertext.GroupId;
}

/// <summary>
/// The delivery was accepted and sent: one message to each PN GW in <paramref name="Gateways"/> (gateway → members
/// reached through it). Members whose PN GW is not registered are <paramref name="Unplaced"/>.
/// </summary>
public sealed record ContentAccepted(
    string DeliveryId,
    string GroupId,
    long Epoch,
    int CiphertextBytes,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Gateways,
    IReadOnlyList<string> Unplaced) : ICpnsMessage, IWithGroupId;

public sealed record ContentRejected(string DeliveryId, DeliveryError Error, string Detail) : ICpnsMessage;

/// <summary>Server delivery → PN GW (CPNS-2/3/4): one ciphertext and the members of this PN that get it.</summary>
public sealed record GroupContent(string DeliveryId, string ServiceId, GroupCiphertext Ciphertext, IReadOnlyList<string> Recipients)
    : ICpnsMessage, IWithGroupId
{
    public string GroupId => Ciphertext.GroupId;
}

/// <summary>PN GW → PNE (CPNS-1): the same ciphertext, fanned out.</summary>
public sealed record ContentForPne(string DeliveryId, string ServiceId, GroupCiphertext Ciphertext) : ICpnsMessage, IWithGroupId
{
    public string GroupId => Ciphertext.GroupId;
}

/// <summary>PNE → PN GW: the content arrived (and whether it could be opened); usage is counted on this receipt.</summary>
public sealed record ContentReceipt(string DeliveryId, string DeviceId, string GroupId, long Epoch, bool Opened)
    : ICpnsMessage, IWithDeviceId;

/// <summary>
/// Inside a PN GW: connections hands a PNE's post (its envelope already checked) to the content function, which relays
/// the envelope unchanged so the server checks the PNE's own signature.
/// </summary>
public sealed record PostFromPne(string DeviceId, PostContent Post, SignedEnvelope Envelope) : INodeLocal, IWithDeviceId;

/// <summary>Inside a BOTH device: its own PNE role sent or received this much, for the PN GW's usage reports.</summary>
public sealed record OwnContentUsage(string ServiceId, string GroupId, long BytesUp, long BytesDown) : INodeLocal;

/// <summary>What a PNE received and opened (or could not), oldest first.</summary>
public sealed record GetReceivedContent(string DeviceId) : INodeLocal, IWithDeviceId;

public sealed record ReceivedItem(string DeliveryId, string ServiceId, string GroupId, long Epoch, string SenderId, Octets? Plaintext,
    KeyError? Error) : ICpnsMessage;

public sealed record ReceivedContent(string DeviceId, IReadOnlyList<ReceivedItem> Items) : ICpnsMessage, IWithDeviceId;

/// <summary>A PNE: encrypt this under the group's current epoch and post it to the group (or one member).</summary>
public sealed record SendContent(string DeliveryId, string ServiceId, string GroupId, Octets Payload, string? TargetDeviceId = null)
    : INodeLocal, IWithGroupId;

/// <summary>Inside the server: the delivery function asks the CSKMF to encrypt for a local sender.</summary>
public sealed record SealForGroup(string GroupId, string SenderId, Octets Plaintext) : INodeLocal, IWithGroupId;

public sealed record GetContentStats : INodeLocal
{
    public static readonly GetContentStats Instance = new();
}

/// <summary>A PN GW's content counters: group messages from the server, PNE copies sent, receipts, posts relayed up.</summary>
public sealed record ContentStats(string GatewayId, long GroupMessagesReceived, long CopiesSent, long Receipts, long PostsRelayed)
    : ICpnsMessage;

public sealed record GetDeliveryStats : INodeLocal
{
    public static readonly GetDeliveryStats Instance = new();
}

/// <summary>Asks the server's delivery function what became of a delivery a local sender (an ACE, the operator) made.</summary>
public sealed record GetDelivery(string DeliveryId) : INodeLocal;

/// <summary>
/// A local sender's delivery as the server made it: when, and what it sent where (<see cref="ContentAccepted"/>);
/// <paramref name="Accepted"/> is null for a delivery this server does not know (or no longer remembers).
/// </summary>
public sealed record DeliveryRecord(string DeliveryId, string? SenderId, string? ServiceId, long AcceptedAtMs, ContentAccepted? Accepted)
    : INodeLocal;

/// <summary>The server's delivery counters: deliveries accepted and refused, and messages sent to PN GWs.</summary>
public sealed record DeliveryStats(long Accepted, long Rejected, long GatewayMessages) : ICpnsMessage;

// ---- Usage statistics (seed §5.3.1.10) ----

/// <summary>
/// One entity's use of one service in one group over a window: sessions, bytes up (sent by it) and down (delivered
/// to it), and the summed session durations.
/// </summary>
public sealed record UsageRecord(
    string DeviceId,
    string GatewayId,
    string ServiceId,
    string GroupId,
    long Sessions,
    long BytesUp,
    long BytesDown,
    long DurationMs,
    long FromMs,
    long ToMs) : ICpnsMessage, IWithDeviceId;

/// <summary>PN GW → server usage: the aggregated window, numbered; resent until acknowledged.</summary>
public sealed record UsageReport(string GatewayId, long Sequence, IReadOnlyList<UsageRecord> Records) : ICpnsMessage, IWithGatewayId;

public sealed record UsageReportAck(string GatewayId, long Sequence) : ICpnsMessage, IWithGatewayId;

/// <summary>
/// Usage matching every given criterion: the entity (a PNE or a PN GW), the service, the group, and windows that
/// overlap [FromMs, ToMs).
/// </summary>
public sealed record QueryUsage(string? EntityId = null, string? ServiceId = null, string? GroupId = null, long FromMs = 0,
    long ToMs = long.MaxValue) : INodeLocal;

public sealed record UsageSummary(long Sessions, long BytesUp, long BytesDown, long DurationMs, IReadOnlyList<UsageRecord> Records)
    : ICpnsMessage;

/// <summary>The proof behind recorded usage report <paramref name="Index"/>: the reporting PN GW's own signed envelope.</summary>
public sealed record GetUsageProof(long Index) : INodeLocal;

/// <summary>
/// A recorded report and the envelope its PN GW signed (null for the server's own records): anyone holding the PN GW's
/// public key can check, later and without the server, that this PN GW reported exactly this (non-repudiation, §5.4).
/// </summary>
public sealed record UsageProof(long Index, string Source, long Sequence, SignedEnvelope? Envelope) : INodeLocal;

// ---- Charging (seed §5.3.1.11) ----

/// <summary>
/// A charging data record: who used which service in which group, when, how much (bytes and sessions), in how many
/// charging units, at which rate per unit, for what amount.
/// </summary>
public sealed record ChargingRecord(
    string RecordId,
    string UserId,
    string ServiceId,
    string GroupId,
    long StartMs,
    long EndMs,
    long VolumeBytes,
    long Sessions,
    long Units,
    decimal Rate,
    decimal Amount,
    string Currency) : ICpnsMessage;

public enum StatementSubject
{
    User,
    Group,
    /// <summary>Every record of the period (the subject id is not used).</summary>
    All,
}

public sealed record GetStatement(StatementSubject Subject, string SubjectId, long FromMs = 0, long ToMs = long.MaxValue)
    : INodeLocal;

public sealed record ChargingStatement(
    StatementSubject Subject,
    string SubjectId,
    long FromMs,
    long ToMs,
    IReadOnlyList<ChargingRecord> Records,
    long TotalVolumeBytes,
    long TotalSessions,
    long TotalUnits,
    decimal TotalAmount,
    string Currency) : ICpnsMessage;

/// <summary>Inside the server: usage hands each recorded report to charging, numbered by usage's own sequence.</summary>
public sealed record ChargeUsage(long UsageSequence, IReadOnlyList<UsageRecord> Records) : INodeLocal;

/// <summary>Inside the server: charging, recovered, asks usage for every report after the last one it charged.</summary>
public sealed record ReplayUsage(long AfterUsageSequence) : INodeLocal;
