using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Actors.Local;

/// <summary>
/// The PN GW takes a device with no CPNS stack into its PN: it runs a PNE for it (<c>legacy-{id}</c>) under an identity
/// the PN GW's host keeps for it, enrolled by the operator's token like any PNE. The PNE's group keys stay in the PN GW;
/// what it opens goes to <paramref name="Device"/> over the PN's own link as <see cref="LegacyContent"/>. When the device
/// goes away (its actor stops), its PNE deregisters.
/// </summary>
public sealed record AdoptLegacyDevice(EntityIdentity Identity, string DeviceKind, PnTechnology Link, string? EnrolmentToken,
    IActorRef Device) : INodeLocal;
