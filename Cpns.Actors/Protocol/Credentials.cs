namespace Cpns.Actors.Protocol;

/// <summary>An X.509 v3 certificate (DER) the KMC issued: it binds a device id, its kind and its two public keys.</summary>
public sealed record Credential(Octets Der) : ICpnsMessage;

public enum CredentialError
{
    Malformed,
    UnknownIssuer,
    BadSignature,
    Expired,
    NotYetValid,
    Revoked,
    WrongKind,
    WrongSubject,
}

/// <summary>The public half of an entity's identity: what others need to verify it and to agree keys with it.</summary>
public sealed record PublicKeys(Octets Signing, Octets Agreement);

/// <summary>What a device id may look like: it becomes a certificate subject and part of actor names.</summary>
public static class DeviceIds
{
    public static bool IsValid(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 &&
        id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
}
