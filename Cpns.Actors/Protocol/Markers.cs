namespace Cpns.Actors.Protocol;

/// <summary>Every message that crosses an actor boundary of the enabler; bound to the protocol serializer.</summary>
public interface ICpnsMessage;

/// <summary>
/// The node-local API (design §5): what the host, <c>simulate</c>, tests and the operator tell a node's actors
/// in-process — not protocol between entities. Never serialized: bound to the node-local serializer, which refuses
/// both directions, so none of these can leave the process or arrive from another one, whatever the sender.
/// </summary>
public interface INodeLocal : Akka.Actor.INoSerializationVerificationNeeded;

/// <summary>A persisted event of an event-sourced actor; bound to the protocol serializer.</summary>
public interface ICpnsEvent : ICpnsMessage;

/// <summary>Routes on a device id (a PNE or a PN GW).</summary>
public interface IWithDeviceId
{
    string DeviceId { get; }
}

/// <summary>Routes on the id of a PN GW.</summary>
public interface IWithGatewayId
{
    string GatewayId { get; }
}

/// <summary>Routes on the id of a service group.</summary>
public interface IWithGroupId
{
    string GroupId { get; }
}

/// <summary>Routes on the id of a service description in the Metadata Directory.</summary>
public interface IWithServiceId
{
    string ServiceId { get; }
}

public enum EntityKind
{
    Pne,
    PnGateway,
    /// <summary>A device that is a PN GW and a PNE at once (seed Appendix A.1.2.2).</summary>
    Both,
    Server,
    /// <summary>A gateway node's Group Key Manager (distributed topology): its own identity and KMC credential.</summary>
    KeyManager,
}

public enum DeliveryMode
{
    Push,
    Pull,
}
