using System.Security.Cryptography;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>A short, stable fingerprint of a capability document.</summary>
public static class CapabilityHash
{
    public static Octets Of(DeviceCapabilities capabilities) =>
        Octets.Own(SHA256.HashData(Cpns.Actors.Serialization.ProtocolSerializer.Encode(capabilities))[..16]);
}
