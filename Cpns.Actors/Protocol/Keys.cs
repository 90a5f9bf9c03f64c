using Akka.Actor;

namespace Cpns.Actors.Protocol;

public enum KeyOperation
{
    Create,
    Update,
}

public enum KeyError
{
    UnknownGroup,
    UnknownEpoch,
    StaleEpoch,
    NotMember,
    NotYetAvailable,
    Revoked,
    NotAuthorized,
    InsufficientSecurityLevel,
    IntegrityFailure,
    /// <summary>The key function is behind: ask again after the answer's RetryAfterMs (not a refusal of the request).</summary>
    Busy,
}

/// <summary>A PN GW that must receive a group epoch, and the group's members reached through it.</summary>
public sealed record KeyDeliveryTarget(
    string GatewayId,
    IActorRef GatewayCskmf,
    Octets GatewayAgreementKey,
    SecurityLevel PnSecurityLevel,
    IReadOnlyList<string> LocalMembers) : ICpnsMessage, IWithGatewayId;

/// <summary>The parameters SMF gives a group-key request: algorithm, size, and how the key will be delivered.</summary>
public sealed record KeyParameters(string Algorithm, int Bits, DeliveryMode Mode) : ICpnsMessage
{
    public static KeyParameters Aes256Gcm(DeliveryMode mode) => new("AES-256-GCM", 256, mode);
}

/// <summary>Step 1: SMF(server) asks CSKMF(server) for a group key (create or update).</summary>
public sealed record RequestGroupKey(
    string GroupId,
    KeyOperation Operation,
    DeliveryMode Mode,
    SecurityLevel RequiredSecurityLevel,
    IReadOnlyList<KeyDeliveryTarget> Targets) : INodeLocal, IWithGroupId;

/// <summary>Step 2: CSKMF(server) → OSG, parameterized.</summary>
public sealed record OsgKeyRequest(string GroupId, long Epoch, KeyParameters Parameters) : INodeLocal, IWithGroupId;

/// <summary>Step 3: OSG → KMC.</summary>
public sealed record KmcKeyRequest(string GroupId, long Epoch, KeyParameters Parameters) : INodeLocal, IWithGroupId;

/// <summary>Step 4: KMC → OSG: the new key, wrapped under the KMC's key-encryption key.</summary>
public sealed record KmcKeyIssued(string GroupId, long Epoch, KeyParameters Parameters, Octets KeyUnderKek, Octets KeyCheck)
    : INodeLocal, IWithGroupId;

/// <summary>Step 5: OSG → CSKMF(server).</summary>
public sealed record OsgKeyIssued(string GroupId, long Epoch, KeyParameters Parameters, Octets KeyUnderKek, Octets KeyCheck)
    : INodeLocal, IWithGroupId;

/// <summary>Step 6: CSKMF(server) → SMF(server): the group key of this epoch is ready.</summary>
public sealed record GroupKeyReady(string GroupId, long Epoch, DeliveryMode Mode, Octets KeyCheck) : INodeLocal, IWithGroupId;

/// <summary>CSKMF could not make the key.</summary>
public sealed record GroupKeyFailed(string GroupId, KeyError Error, string Detail) : INodeLocal, IWithGroupId;

/// <summary>
/// SMF(server) → CSKMF(server): deliver (push) the epoch now that its step 7 notices are out — to every target,
/// or only to <paramref name="OnlyGatewayId"/> (a PN GW catching up after it registered again).
/// </summary>
public sealed record DeliverGroupKey(string GroupId, long Epoch, string? OnlyGatewayId = null) : INodeLocal, IWithGroupId;

/// <summary>SMF → CSKMF of a PN GW: push the group's current epoch to this one PNE (it registered again).</summary>
public sealed record DeliverToPne(string GroupId, string DeviceId) : INodeLocal, IWithGroupId, IWithDeviceId;

/// <summary>
/// SMF → CSKMF of a PN GW or PNE, push mode: the step-7 notices are out and this epoch should be pushed here;
/// a PN GW then carries it on into its PN. If it does not come in time the CSKMF reports it missing.
/// </summary>
/// <paramref name="LocalMembers"/> (at a PN GW): the group's members in its PN at this epoch, as the notice named them —
/// a key that arrives in a rekey broadcast names none, so it waits for them here.
public sealed record ExpectGroupKey(string GroupId, long Epoch, IReadOnlyList<string>? LocalMembers = null) : INodeLocal, IWithGroupId;

/// <summary>CSKMF → SMF of the same entity: a pushed epoch did not arrive; the SMF has the SECA pull it.</summary>
public sealed record GroupKeyMissing(string GroupId, long Epoch) : INodeLocal, IWithGroupId;

/// <summary>Pull step 8: SMF → SECA: acquire the group key from the location given in the notice.</summary>
public sealed record AcquireGroupKey(string GroupId, long Epoch, IActorRef KeyLocation) : INodeLocal, IWithGroupId;

/// <summary>
/// Pull step 9: CSKMF/SECA of a GW or PNE asks the key holder upstream. <paramref name="SentAtMs"/> (the sender's clock;
/// 0: not given) lets a holder that fell behind answer once a pull and the retries queued behind it.
/// </summary>
public sealed record GroupKeyRequest(string GroupId, long Epoch, string RequesterId, long SentAtMs = 0) : ICpnsMessage, IWithGroupId;

/// <summary>
/// Pull step 10, or push step 8: the group key of an epoch, wrapped for exactly one recipient under the
/// pairwise key of <paramref name="WrapperId"/> and the recipient.
/// </summary>
public sealed record GroupKeyDelivery(
    string GroupId,
    long Epoch,
    DeliveryMode Mode,
    string WrapperId,
    string RecipientId,
    Octets WrappedKey,
    Octets KeyCheck,
    IReadOnlyList<string> LocalMembers,
    EpochAnnouncement Announcement,
    LkhPath? Path = null) : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    /// <summary>Set by a Group Key Manager that wrapped it: the KMC credential its keys are taken from.</summary>
    public Credential? ManagerCredential { get; init; }
}

/// <summary>
/// Push step 8 for a group keyed through a logical key hierarchy: the same message, signed once, goes to every PN GW
/// in the group's tree. Each follows <paramref name="Steps"/> from the tree of <paramref name="BaseTreeEpoch"/> to that
/// of <paramref name="TreeEpoch"/> (a PN GW that joins enters by its own step, with the leaf key its pairwise key
/// with the key manager gives for this epoch), and opens the epoch's group key under the new root key. A PN GW that
/// cannot follow (it missed a broadcast) pulls the key, and its path with it. O(log n) bytes per membership change.
/// </summary>
public sealed record GroupRekeyBroadcast(
    string GroupId,
    long Epoch,
    string WrapperId,
    long BaseTreeEpoch,
    long TreeEpoch,
    IReadOnlyList<LkhRekey> Steps,
    Octets KeyUnderRoot,
    Octets KeyCheck,
    EpochAnnouncement Announcement) : ICpnsMessage, IWithGroupId, IFromKeyManager
{
    /// <summary>Set by a Group Key Manager that sends the server's broadcast: its KMC credential.</summary>
    public Credential? ManagerCredential { get; init; }
}

/// <summary>
/// The group's key manager signs every epoch it makes (group, epoch, key check value); holders check it, so a
/// relay cannot pass off a key of its own.
/// </summary>
public sealed record EpochAnnouncement(string GroupId, long Epoch, Octets KeyCheck, string ManagerId, Octets Signature)
    : ICpnsMessage, IWithGroupId
{
    public static Transcript SignedPart(string groupId, long epoch, Octets keyCheck, string managerId) =>
        new Transcript("cpns/epoch/v1").Add(groupId).Add(epoch).Add(keyCheck).Add(managerId);
}

/// <summary>A holder acknowledges an installed epoch to whoever delivered it.</summary>
public sealed record GroupKeyAck(string GroupId, long Epoch, string HolderId) : ICpnsMessage, IWithGroupId;

public sealed record GetKeyAcks(string GroupId) : INodeLocal, IWithGroupId;

public sealed record KeyAcks(string GroupId, long Epoch, IReadOnlyList<string> Acknowledged, IReadOnlyList<string> Pending)
    : ICpnsMessage, IWithGroupId;

/// <summary>The CSKMF asks the SMF for a periodic rekey of a group (seed: "CSKMF itself can trigger Group Key update").</summary>
public sealed record RekeyDue(string GroupId) : INodeLocal, IWithGroupId;

// ---- Content under a group key (asked of a holder) ----

public sealed record EncryptContent(string GroupId, Octets Plaintext) : INodeLocal, IWithGroupId;

public sealed record DecryptContent(GroupCiphertext Ciphertext) : INodeLocal;

/// <summary>Inside a PNE: a pull group's epoch its SMF heard of, and where its key is; the CSKMF pulls it when first needed.</summary>
public sealed record KeyOnDemand(string GroupId, long Epoch, IActorRef KeyLocation) : INodeLocal, IWithGroupId;

public sealed record ContentDecrypted(string GroupId, long Epoch, string SenderId, Octets Plaintext) : ICpnsMessage, IWithGroupId;

public sealed record ContentRefused(string GroupId, long Epoch, KeyError Error, string Detail) : ICpnsMessage, IWithGroupId;

public sealed record GroupKeyRefused(string GroupId, long Epoch, KeyError Error, string Detail, int RetryAfterMs = 0)
    : ICpnsMessage, IWithGroupId;

/// <summary>Pull step 11: CSKMF → SMF (same entity): the key is available.</summary>
public sealed record GroupKeyAvailable(string GroupId, long Epoch) : INodeLocal, IWithGroupId;

// ---- Revocation (group deletion) ----

/// <summary>Revoke step 1: SMF(server) → CSKMF(server).</summary>
public sealed record RevokeGroupKey(string GroupId) : INodeLocal, IWithGroupId;

/// <summary>Revoke step 2: CSKMF(server) → OSG.</summary>
public sealed record OsgRevokeKey(string GroupId, long FinalEpoch) : INodeLocal, IWithGroupId;

/// <summary>Revoke step 3: OSG → CSKMF(server).</summary>
public sealed record OsgKeyRevoked(string GroupId, long FinalEpoch) : INodeLocal, IWithGroupId;

/// <summary>Revoke step 4: CSKMF(server) → SMF(server).</summary>
public sealed record GroupKeyRevoked(string GroupId, long FinalEpoch) : INodeLocal, IWithGroupId;

/// <summary>Revoke step 6 (and the drop on removal): SMF → CSKMF of the same entity.</summary>
/// <remarks>
/// <paramref name="LeftGroup"/>: the holder was removed from the group at <paramref name="UpToEpoch"/>, so a delivery of
/// that epoch or an older one still on its way is not installed afterwards.
/// </remarks>
public sealed record DropGroupKeys(string GroupId, long UpToEpoch, bool Revoked, bool LeftGroup = false) : INodeLocal, IWithGroupId;

// ---- Holder queries ----

public sealed record GetKeyState(string GroupId) : INodeLocal, IWithGroupId;

public sealed record HeldGroupKey(
    string GroupId,
    string HolderId,
    long? CurrentEpoch,
    Octets? KeyCheck,
    IReadOnlyList<long> Epochs,
    bool Revoked) : INodeLocal, IWithGroupId;

/// <summary>
/// Asks a key holder for one epoch's key wrapped for an operator's X25519 key (audits and tests that compare
/// key bytes); allowed only where <c>cpns.security.allow-key-export</c> is on.
/// </summary>
public sealed record ExportGroupKey(string GroupId, long Epoch, string RecipientId, Octets RecipientAgreementKey)
    : INodeLocal, IWithGroupId;

/// <summary>Asks the server's CSKMF for a group's LKH tree as it stands (sizes and positions; no key material).</summary>
public sealed record GetLkhState(string GroupId) : INodeLocal, IWithGroupId;

/// <summary>
/// A group's LKH tree (0 members when the group is keyed per PN GW), and the rekey broadcast of its current epoch, if
/// the epoch changed the tree by joins and leaves (it is public: it goes to every PN GW as it is).
/// </summary>
public sealed record LkhState(string GroupId, long TreeEpoch, int Members, IReadOnlyDictionary<string, int> Positions,
    GroupRekeyBroadcast? CurrentRekey = null) : ICpnsMessage, IWithGroupId;

/// <summary>
/// Asks the server's CSKMF for the LKH path it keeps for <paramref name="MemberId"/>, or a PN GW's CSKMF for the path
/// it holds, sealed for an operator's X25519 key (audits, tests); only where <c>cpns.security.allow-key-export</c> is on.
/// </summary>
public sealed record ExportLkhPath(string GroupId, string MemberId, string RecipientId, Octets RecipientAgreementKey)
    : INodeLocal, IWithGroupId;

public sealed record ExportedLkhPath(string GroupId, string MemberId, string ExporterId, Octets ExporterAgreementKey, LkhPath Path)
    : INodeLocal, IWithGroupId;

/// <summary>How the server's CSKMF has delivered keys so far.</summary>
public sealed record GetKeyDeliveryStats : INodeLocal
{
    public static readonly GetKeyDeliveryStats Instance = new();
}

/// <param name="FlatDeliveries">Keys wrapped for one PN GW (pushed or pulled), <paramref name="PathsSent"/> of them with its LKH path.</param>
/// <param name="Broadcasts">LKH rekey broadcasts made (each signed once), <paramref name="BroadcastCopies"/> sent in all.</param>
public sealed record KeyDeliveryStats(
    int LkhGroups,
    long FlatDeliveries,
    long PathsSent,
    long Broadcasts,
    long BroadcastCopies,
    long BroadcastBytes,
    long RepeatedPullsSkipped = 0) : INodeLocal;

public sealed record ExportedGroupKey(
    string GroupId,
    long Epoch,
    string ExporterId,
    Octets ExporterAgreementKey,
    Octets WrappedKey) : INodeLocal, IWithGroupId;

public static class DeliveryModeExtensions
{
    public static FlowKind ToFlowKind(this DeliveryMode mode) => mode == DeliveryMode.Push ? FlowKind.Push : FlowKind.Pull;
}
