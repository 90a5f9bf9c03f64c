using Akka.Actor;

namespace Cpns.Actors.Protocol;

/// <summary>
/// A service description in the Metadata Directory (seed §3.2): who offers it, its searchable schema (keywords and
/// attributes), what a consumer must be able to do and be allowed to do, and the service group it is bound to.
/// </summary>
public sealed record ServiceDescription(
    string ServiceId,
    string Name,
    string OffererId,
    string Type,
    IReadOnlyList<string> Keywords,
    IReadOnlyDictionary<string, string> Attributes,
    IReadOnlyList<string> RequiredCodecs,
    int MinBitrateKbps,
    Privilege RequiredPrivilege,
    string? GroupId,
    int LifetimeSeconds) : ICpnsMessage, IWithServiceId
{
    /// <summary>The same description over collections of its own (what is journaled never aliases a caller's lists).</summary>
    public ServiceDescription Detached() => this with
    {
        Keywords = Keywords.ToList(),
        Attributes = new Dictionary<string, string>(Attributes, StringComparer.Ordinal),
        RequiredCodecs = RequiredCodecs.ToList(),
    };
}

public enum DirectoryError
{
    InvalidDescription,
    UnknownService,
    NotOfferer,
    NotAuthorized,
    InvalidQuery,
    Unavailable,
}

/// <summary>A Service Offerer publishes (or republishes, i.e. updates) a description; an ACE publishes over CPNS-5.</summary>
public sealed record PublishService(ServiceDescription Description) : ICpnsMessage, IWithServiceId
{
    public string ServiceId => Description.ServiceId;
}

public sealed record WithdrawService(string ServiceId, string OffererId) : ICpnsMessage, IWithServiceId;

public sealed record ServicePublished(string ServiceId, long Version, long ExpiresAtMs) : ICpnsMessage, IWithServiceId;

public sealed record ServiceWithdrawn(string ServiceId) : ICpnsMessage, IWithServiceId;

public sealed record DirectoryRejected(string ServiceId, DirectoryError Error, string Detail) : ICpnsMessage, IWithServiceId;

/// <summary>
/// A Service Consumer searches: keywords (any may match), attribute filters (all must match), a page. Results are
/// ranked by relevance and hold only what the consumer may see.
/// </summary>
public sealed record SearchServices(
    string ConsumerId,
    IReadOnlyList<string> Keywords,
    IReadOnlyDictionary<string, string> Filters,
    int Offset,
    int Limit,
    long RequestId = 0) : ICpnsMessage;

public sealed record ServiceHit(ServiceDescription Description, double Score) : ICpnsMessage, IWithServiceId
{
    public string ServiceId => Description.ServiceId;
}

public sealed record SearchResult(IReadOnlyList<ServiceHit> Hits, int Total, int Offset, int Limit, bool FromCache, long RequestId = 0)
    : ICpnsMessage;

public sealed record SearchRejected(string ConsumerId, DirectoryError Error, string Detail, long RequestId = 0) : ICpnsMessage;

/// <summary>Who searches, and from which PN (for the proximity boost).</summary>
public sealed record SearchContext(string ConsumerId, string? ConsumerGatewayId) : ICpnsMessage;

// ---- Distributed directory: each PN GW holds the descriptions of its PN ----

public sealed record ShardStore(ServiceDescription Description, long Version, long ExpiresAtMs) : ICpnsMessage, IWithServiceId
{
    public string ServiceId => Description.ServiceId;
}

public sealed record ShardRemove(string ServiceId, string OffererId) : ICpnsMessage, IWithServiceId;

public sealed record ShardStored(string ServiceId, long Version, long ExpiresAtMs) : ICpnsMessage, IWithServiceId;

public sealed record ShardRemoved(string ServiceId, bool Found) : ICpnsMessage, IWithServiceId;

public sealed record ShardSearch(long RequestId, SearchServices Query, SearchContext Context) : ICpnsMessage;

public sealed record ShardResults(long RequestId, string GatewayId, IReadOnlyList<ServiceHit> Hits) : ICpnsMessage;

// ---- Peer-to-peer search among PN GWs (seed Appendix A.1.3: the server only authenticates and authorizes) ----

/// <summary>A PN GW holding a part of the distributed directory: what a peer needs to search it directly.</summary>
public sealed record DirectoryPeer(string GatewayId, PublicKeys Keys, IActorRef DirectoryCache) : ICpnsMessage, IWithGatewayId;

/// <summary>Server → every PN GW whenever the set changes: the PN GWs of the deployment that hold directory parts.</summary>
public sealed record DirectoryPeers(long Version, IReadOnlyList<DirectoryPeer> Peers) : ICpnsMessage;

/// <summary>Asks a PN GW's directory which peers it searches (answered with <see cref="DirectoryPeers"/>).</summary>
public sealed record GetDirectoryPeers : INodeLocal
{
    public static readonly GetDirectoryPeers Instance = new();
}

/// <summary>A PN GW asks the server to authorize searches by one of its PNEs.</summary>
public sealed record SearchGrantRequest(string ConsumerId) : ICpnsMessage;

/// <summary>
/// The server's authorization of a consumer's searches, for a bounded time: who it is, the PN GW that searches for it,
/// and its privileges by group. Signed by the server, so a peer PN GW that answers the search needs no server to trust
/// it, and shows the searching PN GW only what the consumer may see.
/// </summary>
public sealed record SearchGrant(string ConsumerId, string GatewayId, IReadOnlyDictionary<string, Privilege> Privileges, long ExpiresAtMs,
    string ServerId, Octets Signature) : ICpnsMessage
{
    public static Transcript SignedPart(string consumerId, string gatewayId, IReadOnlyDictionary<string, Privilege> privileges,
        long expiresAtMs, string serverId)
    {
        var transcript = new Transcript("cpns/search-grant/v1").Add(consumerId).Add(gatewayId).Add(expiresAtMs).Add(serverId)
            .Add(privileges.Count);
        foreach (var (groupId, privilege) in privileges.OrderBy(p => p.Key, StringComparer.Ordinal))
            transcript = transcript.Add(groupId).Add((long)privilege);
        return transcript;
    }
}

public sealed record SearchGrantRefused(string ConsumerId, DirectoryError Error, string Detail) : ICpnsMessage;

/// <summary>PN GW → PN GW: search your part for this consumer (authorized by the grant); answered with <see cref="ShardResults"/>.</summary>
public sealed record PeerSearch(long RequestId, SearchServices Query, SearchContext Context, SearchGrant Grant) : ICpnsMessage;

// ---- Service management: how a service is performed, chosen from the consumer's capabilities ----

public sealed record NegotiateService(string ServiceId, string ConsumerId) : ICpnsMessage, IWithServiceId;

public sealed record ServicePlan(string ServiceId, string ConsumerId, string Codec, int BitrateKbps) : ICpnsMessage, IWithServiceId;

public enum RefusalReason
{
    UnknownService,
    UnknownConsumer,
    NotAuthorized,
    NoCommonCodec,
    BitrateTooLow,
}

public sealed record ServiceRefused(string ServiceId, string ConsumerId, RefusalReason Reason, string Detail) : ICpnsMessage, IWithServiceId;

/// <summary>
/// Inside the server: the descriptions the server's own index holds for one offerer (an ACE's services, for the
/// CPNS-5 API), with their version and expiry.
/// </summary>
public sealed record GetOfferedServices(string OffererId) : INodeLocal;

public sealed record OfferedService(ServiceDescription Description, long Version, long ExpiresAtMs) : INodeLocal;

public sealed record OfferedServices(string OffererId, IReadOnlyList<OfferedService> Services) : INodeLocal;

/// <summary>Inside the server: the consumer's privilege on each group (the directory filters with it).</summary>
public sealed record GetPrivileges(string SubjectId) : INodeLocal;

public sealed record Privileges(string SubjectId, IReadOnlyDictionary<string, Privilege> ByGroup) : INodeLocal;

/// <summary>Inside the server: an offerer's reachability changed (status tells the directory, for ranking).</summary>
public sealed record OffererReachability(string DeviceId, bool Reachable) : INodeLocal, IWithDeviceId;
