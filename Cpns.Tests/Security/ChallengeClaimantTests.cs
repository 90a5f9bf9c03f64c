using System.Security.Cryptography;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>
/// The one claimant of the challenge–response (a PN GW answering the server, a PNE answering its PN GW), against the
/// verifier's own book: no actor.
/// </summary>
public sealed class ChallengeClaimantTests
{
    private static readonly CredentialAuthority Kmc = CredentialAuthority.Generate("kmc");
    private readonly EntityIdentity _verifier = EntityIdentity.Generate("g1", EntityKind.PnGateway);
    private readonly EntityIdentity _claimant = EntityIdentity.Generate("p1", EntityKind.Pne);

    private (ChallengeBook Book, AuthHello Hello, AuthChallenge Challenge) Challenged(long nowMs = 1_000)
    {
        var book = new ChallengeBook(_verifier, AuthTranscripts.PneContext, TimeSpan.FromSeconds(30));
        var hello = new AuthHello(_claimant.DeviceId, EntityKind.Pne, _claimant.PublicKeys, null, Octets.Own(RandomNumberGenerator.GetBytes(32)),
            AuthTranscripts.PneContext);
        var credential = Kmc.Issue(_verifier.DeviceId, EntityKind.PnGateway, _verifier.PublicKeys, DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        return (book, hello, book.Issue(hello, credential, nowMs));
    }

    [Fact]
    public void An_answer_is_taken_by_the_verifier_that_challenged_and_proves_the_claimants_keys()
    {
        var (book, hello, challenge) = Challenged();
        var answer = ChallengeClaimant.Answer(AuthTranscripts.PneContext, _claimant, challenge, _verifier.PublicKeys.Signing, null, "token-1");

        Assert.NotNull(answer);
        Assert.Null(ChallengeBook.ProofProblem(AuthTranscripts.PneContext, "p1", "g1", _claimant.PublicKeys, answer.Proof));
        Assert.Same(hello, book.Take("p1", answer.Proof, _claimant.PublicKeys, 1_001));
        // The enrolment proof binds the operator's token to this verifier's nonce and the claimant's keys.
        Assert.True(Enrolment.Verify(Enrolment.KeyOf("token-1"), answer.Enrolment, AuthTranscripts.PneContext, "p1", EntityKind.Pne,
            _claimant.PublicKeys, "g1", challenge.VerifierNonce));
        Assert.False(Enrolment.Verify(Enrolment.KeyOf("token-2"), answer.Enrolment, AuthTranscripts.PneContext, "p1", EntityKind.Pne,
            _claimant.PublicKeys, "g1", challenge.VerifierNonce));
        // The proof is for this verifier and this context only.
        Assert.NotNull(ChallengeBook.ProofProblem(AuthTranscripts.PneContext, "p1", "g2", _claimant.PublicKeys, answer.Proof));
        Assert.NotNull(ChallengeBook.ProofProblem(AuthTranscripts.GatewayContext, "p1", "g1", _claimant.PublicKeys, answer.Proof));
    }

    [Fact]
    public void A_challenge_not_signed_by_the_verifiers_key_gets_no_answer_and_a_credential_holder_sends_no_enrolment()
    {
        var (_, _, challenge) = Challenged();
        var impostor = EntityIdentity.Generate("g1", EntityKind.PnGateway);
        Assert.Null(ChallengeClaimant.Answer(AuthTranscripts.PneContext, _claimant, challenge, impostor.PublicKeys.Signing, null, "token-1"));
        // Signed over the PNE context: read as the server's (PN GW) context it does not verify.
        Assert.Null(ChallengeClaimant.Answer(AuthTranscripts.GatewayContext, _claimant, challenge, _verifier.PublicKeys.Signing, null, "token-1"));

        var credential = Kmc.Issue("p1", EntityKind.Pne, _claimant.PublicKeys, DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        var answer = ChallengeClaimant.Answer(AuthTranscripts.PneContext, _claimant, challenge, _verifier.PublicKeys.Signing, credential, "token-1");
        Assert.NotNull(answer);
        Assert.Null(answer.Enrolment);
    }
}
