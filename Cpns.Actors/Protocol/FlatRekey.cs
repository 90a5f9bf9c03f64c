namespace Cpns.Actors.Protocol;

// The flat rekey scheme, which the enabler does not use: `cpns bench` measures the logical key hierarchy against it, on
// the wire as the serializer would carry it, so its records are protocol records too.

/// <summary>One member's copy of a flat rekey: the new group key wrapped under its pairwise key.</summary>
public sealed record MemberWrap(string MemberId, Octets Wrapped) : ICpnsMessage;

/// <summary>The rekey message of the flat scheme: one wrap per member.</summary>
public sealed record FlatRekeyMessage(string GroupId, long Epoch, IReadOnlyList<MemberWrap> Wraps) : ICpnsMessage, IWithGroupId;
