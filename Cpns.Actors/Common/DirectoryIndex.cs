using Cpns.Actors.Persistence;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// The searchable schema of service descriptions and the relevance ranking, the same for the central Metadata
/// Directory and for each PN GW's part of a distributed one. A keyword scores by the field it matches in — name 3,
/// keywords 2, type 1.5, attribute values 1 (a prefix match counts half) — and the score is then boosted for an
/// offerer in the consumer's own PN (×1.5) and lowered for an offerer that cannot be reached (×0.5).
/// </summary>
public sealed class DirectoryIndex
{
    public const double NameWeight = 3;
    public const double KeywordWeight = 2;
    public const double TypeWeight = 1.5;
    public const double AttributeWeight = 1;
    public const double SamePnBoost = 1.5;
    public const double UnreachablePenalty = 0.5;

    private sealed record Entry(ServiceDescription Description, long Version, long ExpiresAtMs);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    public IReadOnlyList<ServiceStoredEvent> All =>
        _entries.Values.Select(e => new ServiceStoredEvent(e.Description, e.Version, e.ExpiresAtMs)).ToList();

    public ServiceDescription? Get(string serviceId) => _entries.GetValueOrDefault(serviceId)?.Description;

    public long VersionOf(string serviceId) => _entries.GetValueOrDefault(serviceId)?.Version ?? 0;

    public void Put(ServiceDescription description, long version, long expiresAtMs) =>
        _entries[description.ServiceId] = new Entry(description, version, expiresAtMs);

    public bool Remove(string serviceId) => _entries.Remove(serviceId);

    /// <summary>Applies a persisted directory event or snapshot (the central directory's and a PN GW's part alike).</summary>
    public void Apply(ICpnsEvent @event)
    {
        switch (@event)
        {
            case ServiceStoredEvent stored:
                Put(stored.Description, stored.Version, stored.ExpiresAtMs);
                break;
            case ServiceRemovedEvent removed:
                Remove(removed.ServiceId);
                break;
            case DirectorySnapshot snapshot:
                foreach (var stored in snapshot.Services)
                    Put(stored.Description, stored.Version, stored.ExpiresAtMs);
                break;
        }
    }

    public IReadOnlyList<string> Expired(long nowMs, int max) =>
        _entries.Values.Where(e => e.ExpiresAtMs <= nowMs).Take(max).Select(e => e.Description.ServiceId).ToList();

    /// <summary>A description's problem, if it has one.</summary>
    public static string? Validate(ServiceDescription d)
    {
        if (!DeviceIds.IsValid(d.ServiceId))
            return "a service id is 1 to 128 letters, digits, '-', '_', '.' or ':'";
        if (string.IsNullOrWhiteSpace(d.Name) || d.Name.Length > 200)
            return "a service needs a name of at most 200 characters";
        if (d.Keywords.Count > 64 || d.Attributes.Count > 64 || d.Keywords.Any(k => k.Length is 0 or > 64))
            return "at most 64 keywords (1 to 64 characters) and 64 attributes";
        if (d.MinBitrateKbps < 0 || d.LifetimeSeconds < 0)
            return "bitrate and lifetime cannot be negative";
        return null;
    }

    /// <summary>One page of ranked hits, and how many there were in all.</summary>
    /// <summary>Why a query is not one a directory answers, if it is not.</summary>
    public static string? QueryProblem(SearchServices query, int maxPage) =>
        query.Limit < 1 || query.Limit > maxPage || query.Offset < 0 || query.Keywords.Count > 32
            ? $"a page is 1 to {maxPage} results from offset 0 on, at most 32 keywords"
            : null;

    public static SearchResult Page(IReadOnlyList<ServiceHit> ranked, SearchServices query, bool fromCache) =>
        new(ranked.Skip(query.Offset).Take(query.Limit).ToList(), ranked.Count, query.Offset, query.Limit, fromCache, query.RequestId);

    /// <summary>Whether a consumer holding these group privileges may see a description (the offerer always may).</summary>
    public static bool Visible(ServiceDescription d, string consumerId, IReadOnlyDictionary<string, Privilege> privileges)
    {
        if (d.OffererId == consumerId)
            return true;
        var required = (Privilege)Math.Max((int)d.RequiredPrivilege, (int)Privilege.View);
        if (d.GroupId is null)
            return required <= Privilege.View;
        return privileges.GetValueOrDefault(d.GroupId, Privilege.None) >= required;
    }

    /// <summary>Every description matching the query (any keyword, all filters), scored and ranked; ties by id.</summary>
    public IReadOnlyList<ServiceHit> Search(SearchServices query, SearchContext context, long nowMs, Func<string, string?> gatewayOf,
        Func<string, bool> unreachable)
    {
        var terms = query.Keywords.Select(Normalize).Where(t => t.Length > 0).Distinct().ToList();
        var hits = new List<ServiceHit>();
        foreach (var entry in _entries.Values)
        {
            var d = entry.Description;
            if (entry.ExpiresAtMs <= nowMs || !Matches(d, query.Filters))
                continue;
            var score = terms.Count == 0 ? 1.0 : terms.Sum(term => Score(d, term));
            if (score <= 0)
                continue;
            if (context.ConsumerGatewayId is not null && gatewayOf(d.OffererId) == context.ConsumerGatewayId)
                score *= SamePnBoost;
            if (unreachable(d.OffererId))
                score *= UnreachablePenalty;
            hits.Add(new ServiceHit(d, Math.Round(score, 6)));
        }

        return Rank(hits);
    }

    public static IReadOnlyList<ServiceHit> Rank(IEnumerable<ServiceHit> hits) =>
        hits.OrderByDescending(h => h.Score).ThenBy(h => h.ServiceId, StringComparer.Ordinal).ToList();

    private static bool Matches(ServiceDescription d, IReadOnlyDictionary<string, string> filters) =>
        filters.All(f => f.Key switch
        {
            "id" => d.ServiceId == f.Value,
            "type" => string.Equals(d.Type, f.Value, StringComparison.OrdinalIgnoreCase),
            "offerer" => d.OffererId == f.Value,
            _ => d.Attributes.TryGetValue(f.Key, out var value) && string.Equals(value, f.Value, StringComparison.OrdinalIgnoreCase),
        });

    private static double Score(ServiceDescription d, string term) =>
        Field(term, Words(d.Name), NameWeight) +
        Field(term, d.Keywords.Select(Normalize), KeywordWeight) +
        Field(term, Words(d.Type), TypeWeight) +
        Field(term, d.Attributes.Values.SelectMany(Words), AttributeWeight);

    private static double Field(string term, IEnumerable<string> words, double weight)
    {
        var best = 0.0;
        foreach (var word in words)
        {
            if (word == term)
                return weight;
            if (term.Length >= 3 && word.StartsWith(term, StringComparison.Ordinal))
                best = weight / 2;
        }

        return best;
    }

    private static IEnumerable<string> Words(string text) =>
        text.Split([' ', ',', ';', '-', '_', '/', '.'], StringSplitOptions.RemoveEmptyEntries).Select(Normalize);

    private static string Normalize(string word) => word.Trim().ToLowerInvariant();
}
