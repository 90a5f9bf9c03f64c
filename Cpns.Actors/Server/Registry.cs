using Akka.Event;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Server;

/// <summary>
/// The server's PN inventory: which PN GWs are registered, and which PNEs each one serves. Registrations are
/// persisted before they are acknowledged; a PN GW's batch of PNE registrations is one event. Registration
/// ids come from a persisted counter and are never reused.
/// </summary>
public sealed class Registry : CpnsPersistentActor
{
    private readonly ServerEndpointsFactory _endpoints;
    private readonly IActorRef _smf;
    private readonly Dictionary<string, GatewayRecord> _gateways = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PneRecord> _pnes = new(StringComparer.Ordinal);
    private long _lastRegistrationNumber;

    /// <summary>Makes the endpoints the registry hands out, once it knows its own reference.</summary>
    public delegate ServerEndpoints ServerEndpointsFactory(IActorRef registry);

    public Registry(ServerEndpointsFactory endpoints, IActorRef smf, CpnsSettings settings) : base(settings)
    {
        _endpoints = endpoints;
        _smf = smf;
    }

    public static Props Props(ServerEndpointsFactory endpoints, IActorRef smf, CpnsSettings settings) =>
        Akka.Actor.Props.Create(() => new Registry(endpoints, smf, settings));

    public override string PersistenceId => $"registry-{Settings.ServerId}";

    private long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    protected override object CreateSnapshot() =>
        new RegistrySnapshot(_gateways.Values.ToList(), _pnes.Values.ToList(), _lastRegistrationNumber);

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: RegistrySnapshot snapshot }:
                _gateways.Clear();
                _pnes.Clear();
                foreach (var gateway in snapshot.Gateways)
                    _gateways[gateway.GatewayId] = gateway;
                foreach (var pne in snapshot.Pnes)
                    _pnes[pne.DeviceId] = pne;
                _lastRegistrationNumber = snapshot.LastRegistrationNumber;
                break;
            case ICpnsEvent @event:
                Apply(@event);
                break;
            case RecoveryCompleted:
                TellSmfEverything();
                break;
        }
    }

    private void Apply(ICpnsEvent @event)
    {
        switch (@event)
        {
            case GatewayRegisteredEvent registered:
                _gateways[registered.Gateway.GatewayId] = registered.Gateway;
                _lastRegistrationNumber = Math.Max(_lastRegistrationNumber, registered.RegistrationNumber);
                break;
            case PnesRegisteredEvent registered:
                foreach (var pne in registered.Pnes)
                    _pnes[pne.DeviceId] = pne;
                _lastRegistrationNumber = Math.Max(_lastRegistrationNumber, registered.LastRegistrationNumber);
                break;
        }
    }

    /// <summary>After recovery the SMF learns the whole inventory, so groups can reach their members again.</summary>
    private void TellSmfEverything()
    {
        foreach (var gateway in _gateways.Values)
            _smf.Tell(new GatewayPlaced(gateway.GatewayId, gateway.Kind, gateway.Keys, gateway.Endpoints));
        foreach (var byGateway in _pnes.Values.GroupBy(p => p.GatewayId))
            _smf.Tell(new PnesPlaced(byGateway.Key, byGateway.Select(p => p.DeviceId).ToList()));
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case RegisterGateway register:
                OnRegisterGateway(register);
                break;
            case RegisterPnes batch:
                OnRegisterPnes(batch);
                break;
            case GetInventory:
                Sender.Tell(new Inventory(
                    _gateways.Values.OrderBy(g => g.GatewayId, StringComparer.Ordinal)
                        .Select(g => new InventoryEntry(g.GatewayId, g.Kind, g.GatewayId, g.RegistrationId)).ToList(),
                    _pnes.Values.OrderBy(p => p.DeviceId, StringComparer.Ordinal)
                        .Select(p => new InventoryEntry(p.DeviceId, EntityKind.Pne, p.GatewayId, p.RegistrationId)).ToList()));
                break;
            default:
                if (!HandleSnapshotReplies(message))
                    Unhandled(message);
                break;
        }
    }

    private void OnRegisterGateway(RegisterGateway register)
    {
        if (Validate(register.GatewayId, register.Keys) is { } problem)
        {
            Reject(register.GatewayId, RegistrationError.InvalidRequest, problem);
            return;
        }

        if (register.Kind is not (EntityKind.PnGateway or EntityKind.Both))
        {
            Reject(register.GatewayId, RegistrationError.InvalidRequest, $"a PN GW registers as PnGateway or Both, not {register.Kind}");
            return;
        }

        if (_pnes.ContainsKey(register.GatewayId))
        {
            Reject(register.GatewayId, RegistrationError.DuplicateDevice, $"{register.GatewayId} is registered as a PNE");
            return;
        }

        var number = _lastRegistrationNumber + 1;
        var record = new GatewayRecord(register.GatewayId, register.Kind, register.Keys, register.Endpoints,
            RegistrationId(number), Settings.ClampLifetime(register.LifetimeSeconds), NowMs);
        var replyTo = Sender;
        Persist(new GatewayRegisteredEvent(record, number), e =>
        {
            Apply(e);
            _smf.Tell(new GatewayPlaced(record.GatewayId, record.Kind, record.Keys, record.Endpoints));
            replyTo.Tell(new GatewayRegistered(record.GatewayId, record.RegistrationId, record.LifetimeSeconds,
                _endpoints(Self)));
            SnapshotIfDue();
        });
    }

    private void OnRegisterPnes(RegisterPnes batch)
    {
        if (!_gateways.ContainsKey(batch.GatewayId))
        {
            Sender.Tell(new PnesRegistered(batch.GatewayId, batch.Pnes
                .Select(p => new PneRegistrationResult(p.DeviceId, null, 0, RegistrationError.UnknownGateway,
                    $"PN GW {batch.GatewayId} is not registered"))
                .ToList()));
            return;
        }

        var number = _lastRegistrationNumber;
        var now = NowMs;
        var accepted = new List<PneRecord>();
        var results = new List<PneRegistrationResult>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pne in batch.Pnes)
        {
            var problem = Validate(pne.DeviceId, pne.Keys)
                          ?? (_gateways.ContainsKey(pne.DeviceId) ? $"{pne.DeviceId} is registered as a PN GW" : null)
                          ?? (!seen.Add(pne.DeviceId) ? $"{pne.DeviceId} appears twice in one batch" : null);
            if (problem is not null)
            {
                results.Add(new PneRegistrationResult(pne.DeviceId, null, 0, RegistrationError.InvalidRequest, problem));
                continue;
            }

            var record = new PneRecord(pne.DeviceId, batch.GatewayId, pne.Keys, pne.Endpoints, RegistrationId(++number),
                Settings.ClampLifetime(pne.LifetimeSeconds), now);
            accepted.Add(record);
            results.Add(new PneRegistrationResult(record.DeviceId, record.RegistrationId, record.LifetimeSeconds, null, null));
        }

        var replyTo = Sender;
        if (accepted.Count == 0)
        {
            replyTo.Tell(new PnesRegistered(batch.GatewayId, results));
            return;
        }

        Persist(new PnesRegisteredEvent(batch.GatewayId, accepted, number), e =>
        {
            Apply(e);
            _smf.Tell(new PnesPlaced(batch.GatewayId, accepted.Select(p => p.DeviceId).ToList()));
            replyTo.Tell(new PnesRegistered(batch.GatewayId, results));
            SnapshotIfDue();
        });
    }

    private static string RegistrationId(long number) => $"r-{number}";

    private static string? Validate(string deviceId, PublicKeys? keys)
    {
        if (string.IsNullOrWhiteSpace(deviceId) || deviceId.Length > 128)
            return "a device id is 1 to 128 characters";
        if (keys is null || keys.Signing.Length != 32 || keys.Agreement.Length != 32)
            return "public keys must be a 32-byte Ed25519 key and a 32-byte X25519 key";
        return null;
    }

    private void Reject(string deviceId, RegistrationError error, string detail)
    {
        Log.Info("registration of {0} rejected: {1} ({2})", deviceId, error, detail);
        Sender.Tell(new RegistrationRejected(deviceId, error, detail));
    }
}
