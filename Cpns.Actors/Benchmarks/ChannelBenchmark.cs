using System.Diagnostics;
using Akka.Actor;
using Akka.Serialization;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Serialization;

namespace Cpns.Actors.Benchmarks;

public sealed record ChannelMeasurement(string Message, string Scheme, double MicrosPerMessage, int Bytes);

/// <summary>
/// One message between two entities, sent and received, both ways of protecting it, in the same run: the signed envelope
/// (serialize, Ed25519 sign, verify, replay and skew checks, deserialize) against a session record (serialize, AES-256-GCM
/// seal and open with the replay window, deserialize). The session handshake — both ends' work — is measured apart, since
/// it is paid once per session, not per message.
/// </summary>
public static class ChannelBenchmark
{
    public static IReadOnlyList<ChannelMeasurement> Run(ActorSystem system, int messagesPerRound, int warmupRounds, int rounds,
        IProgress<string>? progress = null)
    {
        var settings = CpnsSettings.From(system);
        var kmc = CredentialAuthority.Generate("bench-kmc");
        var now = DateTimeOffset.UtcNow;
        SessionEnd End(string id, EntityKind kind)
        {
            var identity = EntityIdentity.Generate(id, kind);
            return new SessionEnd(identity, kmc.Issue(id, kind, identity.PublicKeys, now.AddMinutes(-1), TimeSpan.FromDays(1)), kmc.Verifier());
        }

        var gateway = End("g0001", EntityKind.PnGateway);
        var server = End("cpns-server", EntityKind.Server);
        var serializer = (SerializerWithStringManifest)system.Serialization.FindSerializerForType(typeof(GroupKeyRequest));
        var messages = new (string Name, ICpnsMessage Message)[]
        {
            ("GroupKeyRequest", new GroupKeyRequest("grp-0001", 7, "g0001")),
            ("UsageReport (8 records)", new UsageReport("g0001", 42, Enumerable.Range(0, 8).Select(i =>
                new UsageRecord($"p{i:D5}", "g0001", "s-video", "grp-0001", 1, 4096 * i, 512 * i, 60_000, 1_796_000_000_000, 1_796_000_060_000)).ToList())),
        };

        var results = new List<ChannelMeasurement>();
        foreach (var (name, message) in messages)
        {
            progress?.Report($"signed envelope: {name}");
            var sealer = new EnvelopeSealer(gateway.Identity, "bench", system);
            var guard = new EnvelopeGuard("bench", system, settings);
            guard.Trust(gateway.Identity.DeviceId, gateway.Identity.PublicKeys.Signing);
            var envelopeBytes = ProtocolSerializer.Encode(sealer.Seal(message)).Length;
            var envelope = Time(messagesPerRound, warmupRounds, rounds, () =>
            {
                if (!guard.Open(sealer.Seal(message)).Accepted)
                    throw new InvalidOperationException("the benchmark's own envelope was refused");
            });
            results.Add(new ChannelMeasurement(name, "signed envelope", envelope, envelopeBytes));

            progress?.Report($"session record: {name}");
            var (sending, receiving) = Establish(gateway, server, now);
            var manifest = serializer.Manifest(message);
            var recordBytes = ProtocolSerializer.Encode(sending.Seal(manifest, serializer.ToBinary(message), now)).Length;
            var record = Time(messagesPerRound, warmupRounds, rounds, () =>
            {
                var sealedRecord = sending.Seal(manifest, serializer.ToBinary(message), now);
                if (serializer.FromBinary(receiving.Open(sealedRecord, now), sealedRecord.Manifest) is null)
                    throw new InvalidOperationException("the benchmark's own record did not open");
            });
            results.Add(new ChannelMeasurement(name, "session record", record, recordBytes));

            // The same two, without the serialization both share: what the protection itself costs.
            var payload = serializer.ToBinary(message);
            var signingKey = VerificationKey.TryCreate(gateway.Identity.PublicKeys.Signing)!;
            results.Add(new ChannelMeasurement(name, "Ed25519 sign + verify only", Time(messagesPerRound, warmupRounds, rounds, () =>
            {
                if (!signingKey.Verify(payload, gateway.Identity.Sign(payload)))
                    throw new InvalidOperationException("signature did not verify");
            }), 64));
            results.Add(new ChannelMeasurement(name, "AES-256-GCM seal + open only", Time(messagesPerRound, warmupRounds, rounds, () =>
                receiving.Open(sending.Seal(manifest, payload, now), now)), SealedLayout.TagSize));
            results.Add(new ChannelMeasurement(name, "serialize + deserialize only", Time(messagesPerRound, warmupRounds, rounds, () =>
                serializer.FromBinary(serializer.ToBinary(message), manifest)), payload.Length));
        }

        progress?.Report("Ed25519 and X25519: BouncyCastle against libsodium (NSec), the same keys");
        results.AddRange(Backends(messagesPerRound, warmupRounds, rounds));

        progress?.Report("X.509 credentials: BouncyCastle's Ed25519 against libsodium");
        results.AddRange(Credentials(messagesPerRound, warmupRounds, rounds, now));

        progress?.Report("session handshake");
        var handshakeBytes = 0;
        var handshake = Time(1, Math.Max(1, warmupRounds), Math.Max(5, rounds), () =>
        {
            var start = new SessionInitiator(gateway, server.Identity.DeviceId);
            var responder = SessionResponder.Accept(server, start.Hello, now);
            var (session, confirm) = start.Complete(responder.Answer, now);
            responder.Confirm(confirm, now).Dispose();
            session.Dispose();
            handshakeBytes = ProtocolSerializer.Encode(start.Hello).Length + ProtocolSerializer.Encode(responder.Answer).Length +
                             ProtocolSerializer.Encode(confirm).Length;
        });
        results.Add(new ChannelMeasurement("(once per session)", "session handshake", handshake, handshakeBytes));
        return results;
    }

    /// <summary>
    /// The public-key operations the enabler does per message and per key wrap, with BouncyCastle (managed) and with
    /// libsodium through NSec, on one key pair: signing and agreement with a key object kept (libsodium's secure memory, one
    /// guarded mapping per key) and with one imported per operation (what 100,000 entities in one process could afford);
    /// verification, which holds no secret, either way. <see cref="EntityIdentity"/> takes the faster of what scales.
    /// </summary>
    private static IEnumerable<ChannelMeasurement> Backends(int perRound, int warmupRounds, int rounds)
    {
        var payload = new byte[120];
        var random = new Org.BouncyCastle.Security.SecureRandom();
        var bcSigning = new Org.BouncyCastle.Crypto.Parameters.Ed25519PrivateKeyParameters(random);
        var bcPublic = bcSigning.GeneratePublicKey().GetEncoded();
        var bcAgreement = new Org.BouncyCastle.Crypto.Parameters.X25519PrivateKeyParameters(random);
        var peer = EntityIdentity.Generate("peer", EntityKind.Pne);
        var bcPeer = new Org.BouncyCastle.Crypto.Parameters.X25519PublicKeyParameters(peer.PublicKeys.Agreement.Span);

        var ed25519 = NSec.Cryptography.SignatureAlgorithm.Ed25519;
        var x25519 = NSec.Cryptography.KeyAgreementAlgorithm.X25519;
        var raw = NSec.Cryptography.KeyBlobFormat.RawPrivateKey;
        using var sodiumSigning = NSec.Cryptography.Key.Import(ed25519, bcSigning.GetEncoded(), raw);
        using var sodiumAgreement = NSec.Cryptography.Key.Import(x25519, bcAgreement.GetEncoded(), raw);
        var sodiumPeer = NSec.Cryptography.PublicKey.Import(x25519, peer.PublicKeys.Agreement.Span, NSec.Cryptography.KeyBlobFormat.RawPublicKey);
        var verification = VerificationKey.TryCreate(Octets.Own(bcPublic))!;

        var bcAgreementSecret = bcAgreement.GetEncoded();
        var peerPublic = peer.PublicKeys.Agreement.ToArray();
        Sodium.TryAgree(bcAgreementSecret, peerPublic, out var sodiumShared);
        var bcShared = new byte[32];
        bcAgreement.GenerateSecret(bcPeer, bcShared, 0);
        if (!sodiumShared.AsSpan().SequenceEqual(bcShared) ||
            !Sodium.PublicKeyOf(bcAgreementSecret).AsSpan().SequenceEqual(bcAgreement.GeneratePublicKey().GetEncoded()))
            throw new InvalidOperationException("the two X25519 implementations agree differently");
        var signature = new byte[64];
        bcSigning.Sign(Org.BouncyCastle.Math.EC.Rfc8032.Ed25519.Algorithm.Ed25519, null, payload, 0, payload.Length, signature, 0);
        var rawSigning = Sodium.SigningSecretOf(bcSigning.GetEncoded(), out var rawPublic);
        if (!ed25519.Sign(sodiumSigning, payload).AsSpan().SequenceEqual(signature) ||
            !Sodium.Sign(rawSigning, payload).AsSpan().SequenceEqual(signature) || !rawPublic.AsSpan().SequenceEqual(bcPublic))
            throw new InvalidOperationException("the Ed25519 implementations sign differently");
        var shared = new byte[32];
        return
        [
            new("Ed25519 sign (120 bytes)", "BouncyCastle", Time(perRound, warmupRounds, rounds, () =>
                bcSigning.Sign(Org.BouncyCastle.Math.EC.Rfc8032.Ed25519.Algorithm.Ed25519, null, payload, 0, payload.Length, signature, 0)), 64),
            new("Ed25519 sign (120 bytes)", "libsodium, key kept", Time(perRound, warmupRounds, rounds, () => ed25519.Sign(sodiumSigning, payload)), 64),
            new("Ed25519 sign (120 bytes)", "libsodium, raw bytes (in use)", Time(perRound, warmupRounds, rounds, () =>
                Sodium.Sign(rawSigning, payload)), 64),
            new("Ed25519 sign (120 bytes)", "libsodium, key per call", Time(perRound, warmupRounds, rounds, () =>
            {
                using var key = NSec.Cryptography.Key.Import(ed25519, bcSigning.GetEncoded(), raw);
                ed25519.Sign(key, payload);
            }), 64),
            new("Ed25519 verify (120 bytes)", "BouncyCastle", Time(perRound, warmupRounds, rounds, () =>
                new Org.BouncyCastle.Crypto.Parameters.Ed25519PublicKeyParameters(bcPublic)
                    .Verify(Org.BouncyCastle.Math.EC.Rfc8032.Ed25519.Algorithm.Ed25519, null, payload, 0, payload.Length, signature, 0)), 64),
            new("Ed25519 verify (120 bytes)", "libsodium (in use)", Time(perRound, warmupRounds, rounds, () =>
                verification.Verify(payload, Octets.Own(signature))), 64),
            new("X25519 agreement", "BouncyCastle", Time(perRound, warmupRounds, rounds, () => bcAgreement.GenerateSecret(bcPeer, shared, 0)), 32),
            new("X25519 agreement", "libsodium, key kept", Time(perRound, warmupRounds, rounds, () => x25519.Agree(sodiumAgreement, sodiumPeer)?.Dispose()), 32),
            new("X25519 agreement", "libsodium, raw bytes (in use)", Time(perRound, warmupRounds, rounds, () =>
                Sodium.TryAgree(bcAgreementSecret, peerPublic, out _)), 32),
            new("X25519 ephemeral key + agreement (a wrap)", "libsodium, raw bytes", Time(perRound, warmupRounds, rounds, () =>
            {
                var secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
                Sodium.PublicKeyOf(secret);
                Sodium.TryAgree(secret, peerPublic, out _);
            }), 32),
            new("X25519 ephemeral key + agreement (a wrap)", "BouncyCastle", Time(perRound, warmupRounds, rounds, () =>
            {
                var ephemeral = new Org.BouncyCastle.Crypto.Parameters.X25519PrivateKeyParameters(
                    System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
                ephemeral.GeneratePublicKey().GetEncoded();
                ephemeral.GenerateSecret(bcPeer, shared, 0);
            }), 32),
            new("X25519 ephemeral key + agreement (a wrap)", "libsodium", Time(perRound, warmupRounds, rounds, () =>
            {
                using var ephemeral = NSec.Cryptography.Key.Create(x25519);
                ephemeral.PublicKey.Export(NSec.Cryptography.KeyBlobFormat.RawPublicKey);
                using var secret = x25519.Agree(ephemeral, sodiumPeer);
                NSec.Cryptography.KeyDerivationAlgorithm.HkdfSha256.DeriveBytes(secret!, shared, shared, 32);
            }), 32),
        ];
    }

    /// <summary>
    /// A credential issued (at every registration) and checked (by the PN GW and the server, and by each PNE of its PN GW's):
    /// BouncyCastle building and signing it against BouncyCastle building it and libsodium signing it; BouncyCastle parsing
    /// and verifying it against the verifier in use, on first sight (parse, libsodium verify) and when seen before.
    /// </summary>
    private static IEnumerable<ChannelMeasurement> Credentials(int perRound, int warmupRounds, int rounds, DateTimeOffset now)
    {
        var rootSecret = new byte[32];
        System.Security.Cryptography.RandomNumberGenerator.Fill(rootSecret);
        var authority = CredentialAuthority.FromPrivateKey("bench-kmc", rootSecret);
        var bcRoot = new Org.BouncyCastle.Crypto.Parameters.Ed25519PrivateKeyParameters(rootSecret);
        var bcRootPublic = bcRoot.GeneratePublicKey();
        var device = EntityIdentity.Generate("p00001", EntityKind.Pne);
        var credential = authority.Issue(device.DeviceId, EntityKind.Pne, device.PublicKeys, now.AddMinutes(-5), TimeSpan.FromDays(1));
        var der = credential.Der.ToArray();
        var parser = new Org.BouncyCastle.X509.X509CertificateParser();
        if (!parser.ReadCertificate(der).IsSignatureValid(bcRootPublic))
            throw new InvalidOperationException("BouncyCastle does not verify the credential libsodium signed");

        Org.BouncyCastle.X509.X509Certificate BouncyCastleIssue() => BouncyCastleCredential.Issue(
            bcRoot, "bench-kmc", device.DeviceId, EntityKind.Pne, device.PublicKeys, now.AddMinutes(-5), TimeSpan.FromDays(1));

        var verifier = authority.Verifier();
        // Credentials not seen before, one for every check timed (each has a serial of its own, so nothing is remembered).
        var unseen = Enumerable.Range(0, (warmupRounds + rounds) * perRound)
            .Select(_ => authority.Issue(device.DeviceId, EntityKind.Pne, device.PublicKeys, now.AddMinutes(-5), TimeSpan.FromDays(1)))
            .ToArray();
        var next = 0;
        return
        [
            new("X.509 credential issue", "BouncyCastle", Time(perRound, warmupRounds, rounds, () => BouncyCastleIssue()), der.Length),
            new("X.509 credential issue", "libsodium signer (in use)", Time(perRound, warmupRounds, rounds, () =>
                authority.Issue(device.DeviceId, EntityKind.Pne, device.PublicKeys, now.AddMinutes(-5), TimeSpan.FromDays(1))), der.Length),
            new("X.509 credential check", "BouncyCastle", Time(perRound, warmupRounds, rounds, () =>
            {
                if (!parser.ReadCertificate(der).IsSignatureValid(bcRootPublic))
                    throw new InvalidOperationException("credential did not verify");
            }), der.Length),
            new("X.509 credential check", "libsodium, first sight (in use)", Time(perRound, warmupRounds, rounds, () =>
            {
                if (!verifier.Verify(unseen[next++], now).Valid)
                    throw new InvalidOperationException("credential did not verify");
            }), der.Length),
            new("X.509 credential check", "libsodium, seen before (in use)", Time(perRound, warmupRounds, rounds, () =>
            {
                if (!verifier.Verify(credential, now).Valid)
                    throw new InvalidOperationException("credential did not verify");
            }), der.Length),
        ];
    }

    private static (Session Sending, Session Receiving) Establish(SessionEnd initiator, SessionEnd responder, DateTimeOffset now)
    {
        var start = new SessionInitiator(initiator, responder.Identity.DeviceId);
        var answer = SessionResponder.Accept(responder, start.Hello, now);
        var (session, confirm) = start.Complete(answer.Answer, now);
        return (session, answer.Confirm(confirm, now));
    }

    /// <summary>The median over rounds of the time per operation, each round <paramref name="perRound"/> operations.</summary>
    private static double Time(int perRound, int warmupRounds, int rounds, Action operation)
    {
        for (var i = 0; i < warmupRounds * perRound; i++)
            operation();
        var perOperation = new double[rounds];
        for (var r = 0; r < rounds; r++)
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < perRound; i++)
                operation();
            perOperation[r] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / perRound;
        }

        return RekeyBenchmark.Median(perOperation);
    }
}
