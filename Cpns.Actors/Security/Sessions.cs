using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cpns.Actors.Protocol;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;

namespace Cpns.Actors.Security;

/// <summary>
/// What protects a session: the key agreement, the signatures over the transcript, the record cipher and the KDF. An
/// initiator offers a list in order of preference; the responder takes the first it supports. The offer is in the
/// transcript both sides sign, so a list shortened on the way (a downgrade) breaks the responder's signature.
/// </summary>
public enum SessionSuite
{
    X25519Ed25519Aes256GcmSha256 = 1,
}


/// <summary>
/// Handshake 1/3: the initiator's id (and its credential, when the responder does not already hold its key), a fresh
/// X25519 key and nonce, the suites it offers.
/// </summary>
public sealed record SessionHello(
    string InitiatorId,
    string ResponderId,
    Credential? InitiatorCredential,
    Octets Ephemeral,
    Octets Nonce,
    IReadOnlyList<SessionSuite> Offered) : ISecureWire;

/// <summary>
/// Handshake 2/3: the responder's credential, its fresh key and nonce, the suite chosen, its transcript signature, and the
/// nonce of the hello it answers (so an initiator with several handshakes under way finishes the right one).
/// </summary>
public sealed record SessionAccept(
    string ResponderId,
    Credential? ResponderCredential,
    Octets Ephemeral,
    Octets Nonce,
    SessionSuite Chosen,
    Octets Signature,
    Octets HelloNonce) : ISecureWire;

/// <summary>Handshake 3/3: the initiator's transcript signature; after it both ends hold the session keys.</summary>
public sealed record SessionConfirm(Octets SessionId, Octets Signature) : ISecureWire;

/// <summary>
/// One message inside a session: AES-256-GCM under the sender's direction key, the nonce made of the direction and
/// the sequence number; session id, both entity ids, the manifest and the sequence number are the associated data.
/// </summary>
public sealed record SessionRecord(Octets SessionId, long Sequence, string Manifest, Octets Ciphertext) : ISecureWire;

/// <summary>
/// The answer to a handshake step or record that was refused. A record refused because its session is unknown or expired
/// (the receiver restarted, or the session ran out) is sent again by its sender as a signed envelope.
/// </summary>
public sealed record SessionRefused(Octets SessionId, long Sequence, SessionRefusal Reason) : ISecureWire;

public enum SessionRefusal
{
    UnknownPeer,
    BadCredential,
    WrongPeer,
    BadSignature,
    NoCommonSuite,
    Overloaded,
    UnknownSession,
    Expired,
    Replayed,
    TooOld,
    BadRecord,
}

/// <summary>Thrown by a handshake step or a record that is refused: the reason is for the receiver's counters.</summary>
public sealed class SessionRefusedException(SessionRefusal reason, string detail) : Exception(detail)
{
    public SessionRefusal Reason { get; } = reason;
}

/// <summary>
/// What an end of a handshake brings: its identity, and how it knows the peer's signing key — the key it already trusts
/// for that id (<see cref="KnownKeys"/>: what the registry and the KMC established), or else the peer's credential
/// checked against the KMC root. Its own credential is sent only when it has one.
/// </summary>
public sealed record SessionEnd(EntityIdentity Identity, Credential? Credential = null, CredentialVerifier? Verifier = null)
{
    public IReadOnlyList<SessionSuite> Suites { get; init; } = [SessionSuite.X25519Ed25519Aes256GcmSha256];

    /// <summary>The signing key this end trusts for an id, or null when it knows none.</summary>
    public Func<string, Octets?>? KnownKeys { get; init; }

    internal Octets CheckPeer(Credential? credential, string expectedId, DateTimeOffset now)
    {
        if (KnownKeys?.Invoke(expectedId) is { } known)
            return known;
        if (Verifier is null || credential is null)
            throw new SessionRefusedException(SessionRefusal.UnknownPeer, $"no trusted key or credential for {expectedId}");
        var check = Verifier.Verify(credential, now, expectedDeviceId: expectedId);
        if (!check.Valid)
            throw new SessionRefusedException(check.Error == CredentialError.WrongSubject ? SessionRefusal.WrongPeer : SessionRefusal.BadCredential,
                $"credential of {expectedId}: {check.Detail}");
        return check.Credential!.Keys.Signing;
    }
}

/// <summary>The initiator's side of one handshake: <see cref="Hello"/> starts it, <see cref="Complete"/> finishes it.</summary>
public sealed class SessionInitiator
{
    private readonly SessionEnd _self;
    private readonly X25519Secret _ephemeral = X25519Secret.Generate();

    public SessionInitiator(SessionEnd self, string responderId)
    {
        _self = self;
        Hello = new SessionHello(self.Identity.DeviceId, responderId, self.Credential, _ephemeral.PublicKey,
            Octets.Own(RandomNumberGenerator.GetBytes(16)), self.Suites);
    }

    public SessionHello Hello { get; }

    /// <summary>Checks the responder's credential, suite and signature; returns the session and the confirmation to send.</summary>
    public (Session Session, SessionConfirm Confirm) Complete(SessionAccept accept, DateTimeOffset now, SessionLimits? limits = null)
    {
        if (accept.HelloNonce != Hello.Nonce)
            throw new SessionRefusedException(SessionRefusal.UnknownSession, "an answer to another hello");
        if (accept.ResponderId != Hello.ResponderId)
            throw new SessionRefusedException(SessionRefusal.WrongPeer, $"asked {Hello.ResponderId}, answered by {accept.ResponderId}");
        var responder = _self.CheckPeer(accept.ResponderCredential, Hello.ResponderId, now);
        if (!Hello.Offered.Contains(accept.Chosen))
            throw new SessionRefusedException(SessionRefusal.NoCommonSuite, $"suite {accept.Chosen} was not offered");
        var transcript = Handshake.Transcript(Hello, accept);
        if (!EntityIdentity.Verify(responder, Handshake.Signed(transcript, "responder"), accept.Signature))
            throw new SessionRefusedException(SessionRefusal.BadSignature, $"{accept.ResponderId}'s transcript signature does not verify");
        var keys = Handshake.Keys(_ephemeral, accept.Ephemeral, transcript);
        _ephemeral.Dispose(); // one handshake per initiator: the ephemeral key is done with
        var confirm = new SessionConfirm(keys.SessionId, _self.Identity.Sign(Handshake.Signed(transcript, "initiator")));
        return (new Session(keys, Hello.InitiatorId, accept.ResponderId, responder, initiator: true, now, limits ?? SessionLimits.Default), confirm);
    }
}

/// <summary>
/// The responder's side: <see cref="Accept"/> answers a hello (nothing is kept but this object, which the caller bounds and
/// expires), <see cref="Confirm"/> checks the initiator's signature and returns the session.
/// </summary>
public sealed class SessionResponder
{
    private readonly SessionHello _hello;
    private readonly Octets _initiatorKey;
    private readonly byte[] _transcript;
    private readonly SessionKeys _keys;

    private SessionResponder(SessionHello hello, Octets initiatorKey, byte[] transcript, SessionKeys keys, SessionAccept answer)
    {
        _hello = hello;
        _initiatorKey = initiatorKey;
        _transcript = transcript;
        _keys = keys;
        Answer = answer;
    }

    public SessionAccept Answer { get; }

    public Octets SessionId => _keys.SessionId;

    public string InitiatorId => _hello.InitiatorId;

    public static SessionResponder Accept(SessionEnd self, SessionHello hello, DateTimeOffset now)
    {
        if (hello.ResponderId != self.Identity.DeviceId)
            throw new SessionRefusedException(SessionRefusal.WrongPeer, $"hello for {hello.ResponderId} reached {self.Identity.DeviceId}");
        if (hello.Ephemeral.Length != Sodium.KeySize || hello.Nonce.Length < 16)
            throw new SessionRefusedException(SessionRefusal.BadRecord, "hello has no valid ephemeral key or nonce");
        var initiator = self.CheckPeer(hello.InitiatorCredential, hello.InitiatorId, now);
        var chosen = hello.Offered.FirstOrDefault(self.Suites.Contains);
        if (chosen == default)
            throw new SessionRefusedException(SessionRefusal.NoCommonSuite, $"none of {string.Join(",", hello.Offered)} is supported");

        using var ephemeral = X25519Secret.Generate();
        var unsigned = new SessionAccept(self.Identity.DeviceId, self.Credential, ephemeral.PublicKey,
            Octets.Own(RandomNumberGenerator.GetBytes(16)), chosen, Octets.Empty, hello.Nonce);
        var transcript = Handshake.Transcript(hello, unsigned);
        var answer = unsigned with { Signature = self.Identity.Sign(Handshake.Signed(transcript, "responder")) };
        return new SessionResponder(hello, initiator, transcript, Handshake.Keys(ephemeral, hello.Ephemeral, transcript), answer);
    }

    public Session Confirm(SessionConfirm confirm, DateTimeOffset now, SessionLimits? limits = null)
    {
        if (confirm.SessionId != _keys.SessionId)
            throw new SessionRefusedException(SessionRefusal.UnknownSession, "confirmation for another session");
        if (!EntityIdentity.Verify(_initiatorKey, Handshake.Signed(_transcript, "initiator"), confirm.Signature))
            throw new SessionRefusedException(SessionRefusal.BadSignature, $"{_hello.InitiatorId}'s transcript signature does not verify");
        return new Session(_keys, Answer.ResponderId, _hello.InitiatorId, _initiatorKey, initiator: false, now, limits ?? SessionLimits.Default);
    }
}

/// <summary>How long a session lives and how many records it carries before its ends handshake again.</summary>
public sealed record SessionLimits(TimeSpan Lifetime, long MaxRecords)
{
    public static SessionLimits Default { get; } = new(TimeSpan.FromHours(1), 1L << 32);
}

/// <summary>When a function starts sessions and how it bounds them (<c>cpns.security.sessions</c>).</summary>
public sealed record SessionPolicy(bool Enabled, int AfterMessages, SessionLimits Limits, int MaxPending, TimeSpan HandshakeTimeout);

internal sealed record SessionKeys(Octets SessionId, byte[] InitiatorToResponder, byte[] ResponderToInitiator);

internal static class Handshake
{
    public static byte[] Transcript(SessionHello hello, SessionAccept accept)
    {
        var transcript = new Transcript("cpns/session/v1")
            .Add(hello.InitiatorId).Add(hello.ResponderId).Add(hello.InitiatorCredential?.Der ?? Octets.Empty).Add(hello.Ephemeral).Add(hello.Nonce)
            .Add(string.Join(",", hello.Offered.Select(s => (int)s)))
            .Add(accept.ResponderId).Add(accept.ResponderCredential?.Der ?? Octets.Empty).Add(accept.Ephemeral).Add(accept.Nonce)
            .Add((long)accept.Chosen);
        return transcript.Bytes.ToArray();
    }

    public static byte[] Signed(byte[] transcript, string role) => [.. Encoding.UTF8.GetBytes(role), 0, .. transcript];

    public static SessionKeys Keys(X25519Secret own, Octets peerEphemeral, byte[] transcript)
    {
        if (peerEphemeral.Length != Sodium.KeySize)
            throw new SessionRefusedException(SessionRefusal.BadRecord, "ephemeral key is not 32 bytes");
        var shared = own.Agree(peerEphemeral)
                     ?? throw new SessionRefusedException(SessionRefusal.BadRecord, "ephemeral key is a low-order point");
        try
        {
            var salt = SHA256.HashData(transcript);
            byte[] Derive(string label, int length) => HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, length, salt, Encoding.UTF8.GetBytes(label));
            return new SessionKeys(Octets.Own(Derive("cpns/session/v1 id", 16)), Derive("cpns/session/v1 i->r", SealedLayout.KeySize),
                Derive("cpns/session/v1 r->i", SealedLayout.KeySize));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }
    }
}

/// <summary>
/// An established session between two entities, owned by one actor: it seals records to the peer under this direction's
/// key with increasing sequence numbers, and opens the peer's records once each within a replay window. Timestamps play
/// no part, so a receiver's queueing can never turn a valid record into a refusal.
/// </summary>
public sealed class Session : IDisposable
{
    // The keys, and a cipher context only for a direction in steady use (its records less than a second apart): a context
    // holds about 1.4 KB of native memory and most sessions of a large network are idle between heartbeats, while one made
    // per record costs about 2 µs — most of a record's price on a busy link.
    private static readonly TimeSpan SteadyGap = TimeSpan.FromSeconds(1);
    private readonly byte[] _sendKey;
    private readonly byte[] _receiveKey;
    private AesGcm? _sendCipher;
    private AesGcm? _receiveCipher;
    private DateTimeOffset _lastSealed = DateTimeOffset.MinValue;
    private DateTimeOffset _lastOpened = DateTimeOffset.MinValue;
    private readonly uint _sendDirection;
    private readonly uint _receiveDirection;
    private readonly byte[] _sendContext;
    private readonly byte[] _receiveContext;
    private readonly DateTimeOffset _expiresAt;
    private readonly long _maxRecords;
    private long _sent;
    private ReplayWindow _window;

    internal Session(SessionKeys keys, string localId, string peerId, Octets peerKey, bool initiator, DateTimeOffset now,
        SessionLimits limits)
    {
        Id = keys.SessionId;
        LocalId = localId;
        PeerId = peerId;
        PeerKey = peerKey;
        _sendKey = initiator ? keys.InitiatorToResponder : keys.ResponderToInitiator;
        _receiveKey = initiator ? keys.ResponderToInitiator : keys.InitiatorToResponder;
        _sendDirection = initiator ? 1u : 2u;
        _receiveDirection = initiator ? 2u : 1u;
        _sendContext = new Transcript("cpns/record/v1").Add(Id).Add(localId).Add(peerId).Bytes.ToArray();
        _receiveContext = new Transcript("cpns/record/v1").Add(Id).Add(peerId).Add(localId).Bytes.ToArray();
        _expiresAt = now + limits.Lifetime;
        _maxRecords = limits.MaxRecords;
    }

    public Octets Id { get; }

    public string LocalId { get; }

    public string PeerId { get; }

    /// <summary>The signing key the peer proved in the handshake: the session ends when the trust in that key does.</summary>
    public Octets PeerKey { get; }

    public bool IsExpired(DateTimeOffset now) => now >= _expiresAt || _sent >= _maxRecords;

    public SessionRecord Seal(string manifest, ReadOnlySpan<byte> payload, DateTimeOffset now)
    {
        if (IsExpired(now))
            throw new SessionRefusedException(SessionRefusal.Expired, $"session with {PeerId} has expired: handshake again");
        var sequence = ++_sent;
        CryptoOperations.Sealed();
        var output = new byte[payload.Length + SealedLayout.TagSize];
        Span<byte> nonce = stackalloc byte[SealedLayout.NonceSize];
        Nonce(nonce, _sendDirection, sequence);
        Span<byte> associated = stackalloc byte[_sendContext.Length + MaxManifestBytes + 12];
        var steady = now - _lastSealed < SteadyGap;
        _lastSealed = now;
        var send = _sendCipher ?? new AesGcm(_sendKey, SealedLayout.TagSize);
        try
        {
            send.Encrypt(nonce, payload, output.AsSpan(0, payload.Length), output.AsSpan(payload.Length),
                AssociatedData(associated, _sendContext, manifest, sequence));
        }
        finally
        {
            KeepIfSteady(steady, ref _sendCipher, send);
        }
        return new SessionRecord(Id, sequence, manifest, Octets.Own(output));
    }

    /// <summary>The plaintext of the peer's record, or a <see cref="SessionRefusedException"/> (nothing is kept of a refused record).</summary>
    public byte[] Open(SessionRecord record, DateTimeOffset now)
    {
        if (record.SessionId != Id)
            throw new SessionRefusedException(SessionRefusal.UnknownSession, "record of another session");
        if (now >= _expiresAt)
            throw new SessionRefusedException(SessionRefusal.Expired, $"session with {PeerId} has expired");
        if (record.Sequence <= 0 || record.Ciphertext.Length < SealedLayout.TagSize || Encoding.UTF8.GetByteCount(record.Manifest) > MaxManifestBytes)
            throw new SessionRefusedException(SessionRefusal.BadRecord, "record header is incomplete");
        CryptoOperations.Sealed();
        var box = record.Ciphertext.Span;
        var plaintext = new byte[box.Length - SealedLayout.TagSize];
        Span<byte> nonce = stackalloc byte[SealedLayout.NonceSize];
        Nonce(nonce, _receiveDirection, record.Sequence);
        try
        {
            Span<byte> associated = stackalloc byte[_receiveContext.Length + MaxManifestBytes + 12];
            var steady = now - _lastOpened < SteadyGap;
            _lastOpened = now;
            var receive = _receiveCipher ?? new AesGcm(_receiveKey, SealedLayout.TagSize);
            try
            {
                receive.Decrypt(nonce, box[..plaintext.Length], box[plaintext.Length..], plaintext,
                    AssociatedData(associated, _receiveContext, record.Manifest, record.Sequence));
            }
            finally
            {
                KeepIfSteady(steady, ref _receiveCipher, receive);
            }
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new SessionRefusedException(SessionRefusal.BadRecord, $"record {record.Sequence} from {PeerId} does not authenticate");
        }

        // Only an authentic record moves the window: a forged sequence number cannot push real ones out of it.
        switch (_window.Accept(record.Sequence))
        {
            case ReplayVerdict.Replayed:
                throw new SessionRefusedException(SessionRefusal.Replayed, $"record {record.Sequence} from {PeerId} was seen");
            case ReplayVerdict.TooOld:
                throw new SessionRefusedException(SessionRefusal.TooOld, $"record {record.Sequence} from {PeerId} is older than the window");
        }

        return plaintext;
    }

    private static void Nonce(Span<byte> nonce, uint direction, long sequence)
    {
        BinaryPrimitives.WriteUInt32BigEndian(nonce, direction);
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], sequence);
    }

    private const int MaxManifestBytes = 128;

    /// <summary>Session id and both entity ids (fixed per direction), then the manifest and the sequence number.</summary>
    private static ReadOnlySpan<byte> AssociatedData(Span<byte> buffer, byte[] context, string manifest, long sequence)
    {
        if (Encoding.UTF8.GetByteCount(manifest) > MaxManifestBytes)
            throw new SessionRefusedException(SessionRefusal.BadRecord, $"manifest '{manifest[..16]}…' is too long");
        context.CopyTo(buffer);
        var length = Encoding.UTF8.GetBytes(manifest, buffer[(context.Length + 4)..]);
        BinaryPrimitives.WriteInt32BigEndian(buffer[context.Length..], length);
        BinaryPrimitives.WriteInt64BigEndian(buffer[(context.Length + 4 + length)..], sequence);
        return buffer[..(context.Length + 4 + length + 8)];
    }

    private static void KeepIfSteady(bool steady, ref AesGcm? kept, AesGcm used)
    {
        if (steady)
        {
            kept = used;
            return;
        }

        used.Dispose();
        kept = null;
    }

    public void Dispose()
    {
        _sendCipher?.Dispose();
        _receiveCipher?.Dispose();
        CryptographicOperations.ZeroMemory(_sendKey);
        CryptographicOperations.ZeroMemory(_receiveKey);
    }
}
