using System.Security.Cryptography;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The verifier's side of the challenge–response that the server runs for PN GWs and a PN GW runs for its PNEs: one open
/// challenge per device, signed over the hello's nonce and a fresh one of the verifier's, taken only by the registration
/// that answers it (an answer to an older challenge leaves the open one open). Owned by one actor.
/// </summary>
public sealed class ChallengeBook(EntityIdentity verifier, string context, TimeSpan timeout)
{
    private const int PruneAbove = 1024;

    private sealed record Open(AuthHello Hello, Octets VerifierNonce, long ExpiresAtMs);

    private readonly Dictionary<string, Open> _open = new(StringComparer.Ordinal);

    public string Context => context;

    public AuthChallenge Issue(AuthHello hello, Credential verifierCredential, long nowMs)
    {
        Prune(nowMs);
        var nonce = Octets.Own(RandomNumberGenerator.GetBytes(32));
        _open[hello.DeviceId] = new Open(hello, nonce, nowMs + (long)timeout.TotalMilliseconds);
        var signature = verifier.Sign(AuthTranscripts.Verifier(context, hello.DeviceId, verifier.DeviceId, hello.ClientNonce, nonce).Bytes);
        return new AuthChallenge(hello.DeviceId, verifier.DeviceId, verifierCredential, hello.ClientNonce, nonce, signature);
    }

    /// <summary>Challenges issued and neither answered nor expired.</summary>
    public int OpenCount(long nowMs)
    {
        var open = 0;
        foreach (var challenge in _open.Values)
        {
            if (challenge.ExpiresAtMs >= nowMs)
                open++;
        }

        return open;
    }

    /// <summary>The hello a registration answers, taken once, if it answers its device's open challenge in time.</summary>
    public AuthHello? Take(string deviceId, AuthProof proof, PublicKeys keys, long nowMs)
    {
        if (!_open.TryGetValue(deviceId, out var open) || open.ExpiresAtMs < nowMs || open.VerifierNonce != proof.VerifierNonce ||
            open.Hello.ClientNonce != proof.ClientNonce || open.Hello.Keys != keys)
            return null;
        _open.Remove(deviceId);
        return open.Hello;
    }

    /// <summary>Why an entity's proof (its signature over both nonces, both ids and the context) does not hold, if it does not.</summary>
    public static string? ProofProblem(string context, string deviceId, string verifierId, PublicKeys keys, AuthProof proof)
    {
        if (proof.Context != context)
            return $"proof is for context '{proof.Context}', not '{context}'";
        var transcript = AuthTranscripts.Client(context, deviceId, verifierId, proof.ClientNonce, proof.VerifierNonce);
        return EntityIdentity.Verify(keys.Signing, transcript.Bytes, proof.Signature) ? null : $"the proof of {deviceId} does not verify";
    }

    private void Prune(long nowMs)
    {
        if (_open.Count < PruneAbove)
            return;
        foreach (var expired in _open.Where(kv => kv.Value.ExpiresAtMs < nowMs).Select(kv => kv.Key).ToList())
            _open.Remove(expired);
    }
}

/// <summary>What a claimant sends back for a challenge: its proof, and the enrolment proof of a first registration.</summary>
public sealed record ChallengeAnswer(AuthProof Proof, Octets? Enrolment);

/// <summary>
/// The claimant's side of the same challenge–response, for a PN GW answering the server and a PNE answering its PN GW:
/// the challenge must be signed by the verifier's key over our hello's nonce, and the answer signs both nonces, both ids
/// and the context, so it is good for this verifier and this exchange only. Pure: no actor, no state.
/// </summary>
public static class ChallengeClaimant
{
    /// <summary>The answer to <paramref name="challenge"/>, or null if <paramref name="verifierKey"/> did not sign it.</summary>
    /// <param name="enrolmentToken">The operator's one-time token, used only while the claimant holds no credential.</param>
    public static ChallengeAnswer? Answer(string context, EntityIdentity self, AuthChallenge challenge, Octets verifierKey,
        Credential? credential, string? enrolmentToken)
    {
        var transcript = AuthTranscripts.Verifier(context, self.DeviceId, challenge.VerifierId, challenge.ClientNonce, challenge.VerifierNonce);
        if (!EntityIdentity.Verify(verifierKey, transcript.Bytes, challenge.VerifierSignature))
            return null;
        var proof = new AuthProof(context, challenge.ClientNonce, challenge.VerifierNonce,
            self.Sign(AuthTranscripts.Client(context, self.DeviceId, challenge.VerifierId, challenge.ClientNonce, challenge.VerifierNonce).Bytes));
        var enrolment = credential is null && enrolmentToken is not null
            ? Enrolment.Proof(enrolmentToken, context, self.DeviceId, self.Kind, self.PublicKeys, challenge.VerifierId, challenge.VerifierNonce)
            : null;
        return new ChallengeAnswer(proof, enrolment);
    }
}
