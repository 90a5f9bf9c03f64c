using Akka.Actor;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Gateway;

/// <summary>
/// PNEs moving between PNs and PN GW change: this PN GW's policy (take in PNEs from other PNs; hand its PN over), the
/// PNEs it let in by a bridge request, and the one takeover of another PN GW's PN it may have under way — the old PN
/// GW's table, the PNEs whose signed consent it still waits for, and consents that came before that table.
/// </summary>
public sealed class PnMoves(int earlyConsentsKept)
{
    public sealed record Takeover(IActorRef Asker, string OldGatewayId, IActorRef OldGateway, Octets MoveNonce);

    private readonly HashSet<string> _bridged = new(StringComparer.Ordinal);
    private readonly HashSet<string> _handedOver = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PneRegistration> _awaitingConsent = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MoveConsent> _earlyConsents = new(StringComparer.Ordinal);

    public bool AcceptBridges { get; set; } = true;

    /// <summary>The PN's owner decides whether its PN may be handed to another PN GW; until they say so, it is not.</summary>
    public bool AgreeToHandover { get; set; }

    public Takeover? Current { get; private set; }

    public void Bridged(string deviceId) => _bridged.Add(deviceId);

    /// <summary>Whether this registration is a PNE let in by a bridge request (asked once).</summary>
    public bool TakeBridged(string deviceId) => _bridged.Remove(deviceId);

    /// <summary>A takeover starts with the server's nonce still to come (an empty one until then).</summary>
    public void Start(IActorRef asker, string oldGatewayId, IActorRef oldGateway) =>
        Current = new Takeover(asker, oldGatewayId, oldGateway, Octets.Empty);

    /// <summary>The takeover the server's nonce is for, now carrying it; null if none waits for a nonce.</summary>
    public Takeover? NonceIssued(Octets nonce)
    {
        if (Current is not { MoveNonce.Length: 0 } takeover)
            return null;
        return Current = takeover with { MoveNonce = nonce };
    }

    /// <summary>The old PN GW handed its PN over: each PNE comes only with its own consent; the consents that came early are returned.</summary>
    public List<MoveConsent> HandedOver(IEnumerable<PneRegistration> pnes)
    {
        foreach (var pne in pnes)
        {
            _awaitingConsent[pne.DeviceId] = pne;
            _handedOver.Add(pne.DeviceId);
        }

        return _earlyConsents.Values.ToList();
    }

    /// <summary>Once the early consents were taken: what is left of them names no handed-over PNE.</summary>
    public void DropEarlyConsents() => _earlyConsents.Clear();

    public bool IsForCurrent(MoveConsent consent, string ownId) =>
        Current is { } takeover && consent.ToGatewayId == ownId && consent.FromGatewayId == takeover.OldGatewayId &&
        consent.Nonce == takeover.MoveNonce && consent.Nonce.Length > 0;

    /// <summary>The handed-over registration this consent is for, or null (kept, bounded, if it came before the old PN GW's table).</summary>
    public PneRegistration? Consented(MoveConsent consent)
    {
        if (_awaitingConsent.Remove(consent.DeviceId, out var pne))
            return pne;
        if (_earlyConsents.Count < earlyConsentsKept)
            _earlyConsents[consent.DeviceId] = consent;
        return null;
    }

    public int AwaitingConsent => _awaitingConsent.Count;

    public int StillComing => _handedOver.Count;

    /// <summary>A PNE that will not come over (no consent, a bad one).</summary>
    public void StaysOut(string deviceId) => _handedOver.Remove(deviceId);

    /// <summary>The consent wait ran out: the PNEs that never consented stay out.</summary>
    public List<string> ConsentTimedOut()
    {
        var missing = _awaitingConsent.Keys.ToList();
        foreach (var id in missing)
            _handedOver.Remove(id);
        _awaitingConsent.Clear();
        return missing;
    }

    /// <summary>The server answered a handed-over PNE's registration; true once the last one is through.</summary>
    public bool ArrivedLast(string deviceId) => _handedOver.Remove(deviceId) && _handedOver.Count == 0;

    public Takeover? Finish()
    {
        var takeover = Current;
        Current = null;
        return takeover;
    }
}
