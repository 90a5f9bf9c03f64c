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
                receiving.Open(sending.Seal(manifest, payload, now), now)), Aead.TagSize));
            results.Add(new ChannelMeasurement(name, "serialize + deserialize only", Time(messagesPerRound, warmupRounds, rounds, () =>
                serializer.FromBinary(serializer.ToBinary(message), manifest)), payload.Length));
        }

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
