using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// The signatures over the protocol's signed statements. <c>Protocol/</c> says which bytes each one signs
/// (its <c>SignedPart</c>); signing them and checking them is the identity's job, here.
/// </summary>
public static class SignedStatements
{
    extension(RevocationNotice)
    {
        public static RevocationNotice Sign(EntityIdentity server, string deviceId, IReadOnlyList<string> serials, long revokedAtMs) =>
            new(deviceId, serials, revokedAtMs, server.DeviceId,
                server.Sign(RevocationNotice.SignedPart(deviceId, serials, revokedAtMs, server.DeviceId).Bytes));
    }

    extension(RevocationNotice notice)
    {
        public bool VerifiedBy(string serverId, Octets serverSigningKey) =>
            notice.ServerId == serverId && EntityIdentity.VerifyStatement(serverSigningKey,
                RevocationNotice.SignedPart(notice.DeviceId, notice.Serials, notice.RevokedAtMs, notice.ServerId).Bytes, notice.Signature);
    }

    extension(SearchGrant)
    {
        public static SearchGrant Sign(EntityIdentity server, string consumerId, string gatewayId,
            IReadOnlyDictionary<string, Privilege> privileges, long expiresAtMs) =>
            new(consumerId, gatewayId, privileges, expiresAtMs, server.DeviceId,
                server.Sign(SearchGrant.SignedPart(consumerId, gatewayId, privileges, expiresAtMs, server.DeviceId).Bytes));
    }

    extension(SearchGrant grant)
    {
        public bool VerifiedBy(string serverId, Octets serverSigningKey) =>
            grant.ServerId == serverId && EntityIdentity.Verify(serverSigningKey,
                SearchGrant.SignedPart(grant.ConsumerId, grant.GatewayId, grant.Privileges, grant.ExpiresAtMs, grant.ServerId).Bytes,
                grant.Signature);
    }

    extension(EpochAnnouncement)
    {
        public static EpochAnnouncement Sign(EntityIdentity manager, string groupId, long epoch, Octets keyCheck) =>
            new(groupId, epoch, keyCheck, manager.DeviceId,
                manager.Sign(EpochAnnouncement.SignedPart(groupId, epoch, keyCheck, manager.DeviceId).Bytes));
    }

    extension(EpochAnnouncement announcement)
    {
        public bool VerifiedBy(Octets managerSigningKey) =>
            EntityIdentity.VerifyStatement(managerSigningKey, EpochAnnouncement.SignedPart(announcement.GroupId, announcement.Epoch,
                announcement.KeyCheck, announcement.ManagerId).Bytes, announcement.Signature);
    }

    extension(MoveConsent)
    {
        public static MoveConsent Sign(EntityIdentity pne, Credential credential, string fromGatewayId, string toGatewayId, Octets nonce,
            long timestampMs) =>
            new(pne.DeviceId, fromGatewayId, toGatewayId, nonce, timestampMs, credential,
                pne.Sign(MoveConsent.SignedPart(pne.DeviceId, fromGatewayId, toGatewayId, nonce, timestampMs).Bytes));
    }

    extension(MoveConsent consent)
    {
        public bool VerifiedBy(Octets signingKey) =>
            EntityIdentity.Verify(signingKey, MoveConsent.SignedPart(consent.DeviceId, consent.FromGatewayId, consent.ToGatewayId,
                consent.Nonce, consent.TimestampMs).Bytes, consent.Signature);
    }

    extension(UsageProof proof)
    {
        /// <summary>Whether the recorded envelope is the reporting PN GW's own, as signed.</summary>
        public bool VerifiedBy(Octets signingKey) =>
            proof.Envelope is { } e && e.SenderId == proof.Source &&
            EntityIdentity.Verify(signingKey, SignedEnvelope.SignedPart(e.SenderId, e.Channel, e.Sequence, e.TimestampMs,
                e.Manifest, e.Payload, e.OffersSessions).Bytes, e.Signature);
    }
}
