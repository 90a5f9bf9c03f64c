using System.Security.Cryptography;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>
/// A short, stable fingerprint of a capability document: every field in order, length-prefixed, so two documents that
/// differ in anything differ here (a field added to <see cref="DeviceCapabilities"/> is added here too).
/// </summary>
public static class CapabilityHash
{
    public static Octets Of(DeviceCapabilities capabilities)
    {
        var transcript = new Transcript("cpns/capabilities/v1").Add(capabilities.DeviceKind);
        AddAll(transcript, capabilities.Codecs);
        transcript.Add(capabilities.MaxBitrateKbps).Add(capabilities.StorageBytes).Add(capabilities.BatteryPercent)
            .Add(capabilities.PnTechnologies.Count);
        foreach (var technology in capabilities.PnTechnologies)
            transcript.Add(technology.Name).Add((long)technology.Security);
        AddAll(transcript, capabilities.Functions);
        return Octets.Own(SHA256.HashData(transcript.Bytes)[..16]);
    }

    private static void AddAll(Transcript transcript, IReadOnlyList<string> values)
    {
        transcript.Add(values.Count);
        foreach (var value in values)
            transcript.Add(value);
    }
}
