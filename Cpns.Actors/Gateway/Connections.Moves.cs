using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Gateway;

/// <summary>
/// PNEs moving between PNs (a bridge request, allowed or refused by this PN GW's policy) and PN GW change (this
/// PN GW hands its PN to another, or takes another's over).
/// </summary>
public sealed partial class Connections
{
    private readonly HashSet<string> _bridged = new(StringComparer.Ordinal);
    private readonly HashSet<string> _handedOver = new(StringComparer.Ordinal);
    private bool _acceptBridges = true;
    // The PN's owner decides whether its PN may be handed to another PN GW; until they say so, it is not.
    private bool _agreeToHandover;
    private (IActorRef Asker, string OldGatewayId, IActorRef OldGateway, Octets MoveNonce)? _takeover;
    // A takeover's PNEs, from the old PN GW's table, until each consents; consents that came before that table.
    private readonly Dictionary<string, PneRegistration> _awaitingConsent = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MoveConsent> _earlyConsents = new(StringComparer.Ordinal);

    private sealed record ConsentTimeout : INodeLocal
    {
        public static readonly ConsentTimeout Instance = new();
    }

    /// <summary>A PNE from another PN asks to be taken in.</summary>
    private void OnBridgeRequest(BridgeRequest request)
    {
        var accepted = _acceptBridges && _credential is not null && _registrationId is not null;
        var reason = accepted ? "" : _acceptBridges ? "this PN GW is not registered yet" : "this PN GW takes in no PNEs from other PNs";
        if (accepted)
            _bridged.Add(request.DeviceId);
        Log.Info("{0}: bridge request of {1} from {2}: {3}", _identity.DeviceId, request.DeviceId, request.FromGatewayId,
            accepted ? "allowed" : "denied");
        _link.Send(Sender, new BridgeAnswer(request.DeviceId, _identity.DeviceId, _credential!, accepted, reason));
    }

    private void TakeOver(TakeOverPn takeOver)
    {
        if (_credential is null || _registrationId is null || _server is null || _takeover is not null)
        {
            Sender.Tell(new HandoverResult(takeOver.OldGatewayId, _identity.DeviceId, false, 0,
                _takeover is not null ? "a takeover is already under way" : "this PN GW is not registered yet"));
            return;
        }

        // First the server's nonce for this takeover: the PNEs' consents sign it, and the server takes no other.
        _takeover = (Sender, takeOver.OldGatewayId, takeOver.OldGateway, Octets.Empty);
        _link.Send(_server.Registry, new MoveNonceRequest(_identity.DeviceId));
    }

    private void OnMoveNonce(MoveNonceIssued issued)
    {
        if (_takeover is not { MoveNonce.Length: 0 } takeover || issued.GatewayId != _identity.DeviceId)
            return;
        _takeover = takeover with { MoveNonce = issued.Nonce };
        takeover.OldGateway.Tell(_link.Seal(new HandoverRequest(_identity.DeviceId, _credential!, Endpoints, issued.Nonce)), Self);
    }

    /// <summary>
    /// Another PN GW asks for this PN. If this PN GW agrees, every PNE is told its new home (signed by us, whom it
    /// trusts), then the new PN GW gets the PN table and registers the PNEs itself; this PN GW lets them go.
    /// </summary>
    private void OnHandoverRequest(HandoverRequest request)
    {
        if (!_agreeToHandover)
        {
            Log.Info("{0}: refused to hand its PN to {1}", _identity.DeviceId, request.NewGatewayId);
            _link.Send(Sender, new HandoverAnswer(_identity.DeviceId, _credential!, false, "this PN GW does not hand its PN over", []));
            return;
        }

        var pnes = _pnTable.Values.ToList();
        foreach (var pne in pnes)
            _link.Send(pne.Endpoints.Pne, new HomeChanged(pne.DeviceId, request.NewGatewayId, request.NewGatewayCredential,
                request.NewGateway, request.MoveNonce));
        _link.Send(Sender, new HandoverAnswer(_identity.DeviceId, _credential!, true, "", pnes));
        Log.Warning("{0}: handed its PN of {1} PNEs to {2}", _identity.DeviceId, pnes.Count, request.NewGatewayId);
        foreach (var pne in pnes)
            Detach(pne.DeviceId);
    }

    private void OnHandoverAnswer(HandoverAnswer answer)
    {
        if (_takeover is not { } takeover || takeover.OldGatewayId != answer.OldGatewayId)
            return;
        if (!answer.Accepted)
        {
            _takeover = null;
            takeover.Asker.Tell(new HandoverResult(answer.OldGatewayId, _identity.DeviceId, false, 0, answer.Reason));
            return;
        }

        // Each PNE comes over only with its own signed consent (the old PN GW told it of the move); the server checks it.
        foreach (var pne in answer.Pnes)
        {
            _awaitingConsent[pne.DeviceId] = pne;
            _handedOver.Add(pne.DeviceId);
        }

        foreach (var early in _earlyConsents.Values.ToList())
            OnMoveConsent(early);
        _earlyConsents.Clear();
        if (_handedOver.Count == 0)
            FinishTakeover();
        else if (_awaitingConsent.Count > 0)
            Timers.StartSingleTimer(ConsentTimeout.Instance, ConsentTimeout.Instance, Settings.Security.AuthenticationTimeout);
    }

    /// <summary>A handed-over PNE's consent, checked here (its credential and signature) and again by the server.</summary>
    private void OnMoveConsent(MoveConsent consent)
    {
        if (_takeover is not { } takeover || consent.ToGatewayId != _identity.DeviceId || consent.FromGatewayId != takeover.OldGatewayId ||
            consent.Nonce != takeover.MoveNonce || consent.Nonce.Length == 0)
        {
            Log.Warning("{0}: a move consent of {1} for no takeover under way here; ignored", _identity.DeviceId, consent.DeviceId);
            return;
        }

        if (!_awaitingConsent.Remove(consent.DeviceId, out var pne))
        {
            if (_earlyConsents.Count < Math.Max(1, Settings.Registration.BatchMax) * 16)
                _earlyConsents[consent.DeviceId] = consent; // it came before the old PN GW's answer
            return;
        }

        if (!consent.VerifiedBy(pne.Keys.Signing))
        {
            Log.Warning("{0}: the move consent of {1} is not signed with its keys; it stays out", _identity.DeviceId, consent.DeviceId);
            _handedOver.Remove(consent.DeviceId);
        }
        else
        {
            _waiting[pne.DeviceId] = (pne with { Proof = null, Moving = true, MoveConsent = consent }, pne.Endpoints.Pne);
            _link.Guard.Trust(pne.DeviceId, pne.Keys.Signing);
            TellFunctions(new PneAttached(pne.DeviceId, pne.Keys, pne.Endpoints));
        }

        // The PN comes over in one batch, as it was handed over: its groups rekey once, without the old PN GW.
        if (_awaitingConsent.Count > 0)
            return;
        Timers.Cancel(ConsentTimeout.Instance);
        if (_handedOver.Count == 0)
            FinishTakeover();
        else
            Flush();
    }

    /// <summary>PNEs that never consented stay out; the takeover ends with those that did.</summary>
    private void OnConsentTimeout()
    {
        foreach (var missing in _awaitingConsent.Keys.ToList())
        {
            Log.Warning("{0}: {1} did not consent to the move in time; it stays out", _identity.DeviceId, missing);
            _handedOver.Remove(missing);
        }

        _awaitingConsent.Clear();
        if (_handedOver.Count == 0)
            FinishTakeover();
        else
            Flush();
    }

    /// <summary>Called as the server answers the takeover's registrations; the asker hears once all are through.</summary>
    private void HandedOverRegistered(string deviceId)
    {
        if (_handedOver.Remove(deviceId) && _handedOver.Count == 0)
            FinishTakeover();
    }

    private void FinishTakeover()
    {
        if (_takeover is not { } takeover)
            return;
        _takeover = null;
        var count = _pnTable.Count;
        Log.Warning("{0}: took over the PN of {1}", _identity.DeviceId, takeover.OldGatewayId);
        takeover.Asker.Tell(new HandoverResult(takeover.OldGatewayId, _identity.DeviceId, true, count, ""));
    }
}
