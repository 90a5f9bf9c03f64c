using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// The durable PN table of a PN GW: every PNE registered through it, with its credential (so a restarted PN GW registers
/// its whole PN again as one batch), and the revocations the server told it of. A PNE's hello and registration are
/// screened against both: a revoked device, or an id in the table with other keys, is refused before any challenge.
/// </summary>
public sealed class PnTable(CredentialVerifier verifier)
{
    private readonly Dictionary<string, PneRegistration> _pnes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedDevices = new(StringComparer.Ordinal);
    private readonly HashSet<string> _revokedSerials = new(StringComparer.Ordinal);

    /// <summary>The server's signed revocation notices, by revoked device: what this PN GW passes on to its PNEs.</summary>
    private readonly Dictionary<string, RevocationNotice> _notices = new(StringComparer.Ordinal);

    public int Count => _pnes.Count;

    public IReadOnlyCollection<PneRegistration> Pnes => _pnes.Values;

    public IReadOnlySet<string> RevokedSerials => _revokedSerials;

    public IReadOnlyCollection<RevocationNotice> Notices => _notices.Values;

    public bool Contains(string deviceId) => _pnes.ContainsKey(deviceId);

    public bool TryGet(string deviceId, out PneRegistration registration) => _pnes.TryGetValue(deviceId, out registration!);

    public void Apply(ICpnsEvent @event)
    {
        switch (@event)
        {
            case PnTableJoinedEvent joined:
                foreach (var pne in joined.Pnes)
                    _pnes[pne.DeviceId] = pne;
                break;
            case PnTableLeftEvent left:
                foreach (var id in left.DeviceIds)
                    _pnes.Remove(id);
                break;
            case RevocationLearnedEvent revoked:
                _revokedDevices.Add(revoked.DeviceId);
                _revokedSerials.UnionWith(revoked.Serials);
                if (revoked.Notice is not null)
                    _notices[revoked.DeviceId] = revoked.Notice;
                break;
        }
    }

    public void Restore(PnTableSnapshot snapshot)
    {
        _pnes.Clear();
        foreach (var pne in snapshot.Pnes)
            _pnes[pne.DeviceId] = pne;
        _revokedDevices.UnionWith(snapshot.RevokedDevices ?? []);
        _revokedSerials.UnionWith(snapshot.RevokedSerials ?? []);
        foreach (var notice in snapshot.RevocationNotices ?? [])
            _notices[notice.DeviceId] = notice;
    }

    public PnTableSnapshot Snapshot(Credential? gatewayCredential) =>
        new(gatewayCredential, _pnes.Values.ToList(), _revokedDevices.ToList(), _revokedSerials.ToList(), _notices.Values.ToList());

    public KnownRevocations Known() =>
        new(_revokedDevices.Order(StringComparer.Ordinal).ToList(), _revokedSerials.Order(StringComparer.Ordinal).ToList());

    public sealed record Screening(AuthFailure Failure, string Detail);

    /// <summary>Why a PNE may not register here with these keys and credential, or null.</summary>
    public Screening? Screen(string deviceId, PublicKeys keys, Credential? credential, DateTimeOffset now)
    {
        if (_revokedDevices.Contains(deviceId))
            return new Screening(AuthFailure.Revoked, $"{deviceId} is revoked");
        // An id in the PN table stays bound to its keys: another device cannot take it over here, with or without a
        // credential (the server checks the same against its inventory).
        if (_pnes.TryGetValue(deviceId, out var known) && known.Keys != keys)
            return new Screening(AuthFailure.KeyMismatch, $"{deviceId} is registered in this PN with other keys");
        if (credential is null)
            return null;
        var check = verifier.Verify(credential, now, _revokedSerials, deviceId, EntityKind.Pne);
        if (!check.Valid)
            return new Screening(AuthTranscripts.FromCredentialError(check.Error!.Value), check.Detail!);
        return check.Credential!.Keys != keys
            ? new Screening(AuthFailure.KeyMismatch, $"the credential of {deviceId} binds other keys")
            : null;
    }
}
