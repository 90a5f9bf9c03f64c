using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cpns.Actors.Security;

namespace Cpns.Host.Api;

/// <summary>Who an API client is: an Application/Content Entity on CPNS-5, or an operator of the deployment.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ApiRole>))]
public enum ApiRole
{
    Ace,
    Operator,
}

/// <summary>A client of the server node's HTTP API; only the SHA-256 of its key is kept.</summary>
public sealed record ApiClient(string Id, ApiRole Role, string KeyHash, DateTimeOffset CreatedAt);

/// <summary>
/// The API clients of a server node, in one owner-only JSON file (<c>api-clients.json</c> in the data folder). A key
/// is <c>cpns_&lt;client id&gt;_&lt;43 random characters&gt;</c>, shown once when the client is added; the file keeps its
/// hash. The file is read again whenever it changes, so clients added or removed take effect without a restart.
/// </summary>
public sealed class ApiClientStore
{
    public const string FileName = "api-clients.json";
    private const string KeyPrefix = "cpns_";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly Lock _lock = new();
    private IReadOnlyDictionary<string, ApiClient> _clients = new Dictionary<string, ApiClient>();
    private DateTime _readAt = DateTime.MinValue;

    public ApiClientStore(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
    }

    public string Path { get; }

    public static bool IsValidId(string? id) =>
        id is { Length: > 0 and <= 64 } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');

    public IReadOnlyList<ApiClient> List() => Current().Values.OrderBy(c => c.Id, StringComparer.Ordinal).ToList();

    /// <summary>Adds a client and returns its key (the only time it is seen).</summary>
    public (ApiClient Client, string Key) Add(string id, ApiRole role)
    {
        if (!IsValidId(id))
            throw new ArgumentException($"'{id}' is not a client id (1 to 64 letters, digits, '-' or '.')", nameof(id));
        lock (_lock)
        {
            var clients = Read();
            if (clients.ContainsKey(id))
                throw new InvalidOperationException($"a client '{id}' exists already in {Path}");
            var key = KeyPrefix + id + "_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))
                .TrimEnd('=').Replace('+', '-').Replace('/', '_');
            var client = new ApiClient(id, role, Hash(key), DateTimeOffset.UtcNow);
            Save(clients.Values.Append(client));
            return (client, key);
        }
    }

    public bool Remove(string id)
    {
        lock (_lock)
        {
            var clients = Read();
            if (!clients.ContainsKey(id))
                return false;
            Save(clients.Values.Where(c => c.Id != id));
            return true;
        }
    }

    /// <summary>The client a presented key belongs to, or null (unknown client, wrong key, malformed).</summary>
    public ApiClient? Authenticate(string? presented)
    {
        if (presented is null || presented.Length > 200 || !presented.StartsWith(KeyPrefix, StringComparison.Ordinal))
            return null;
        var separator = presented.IndexOf('_', KeyPrefix.Length); // ids have no '_'; the secret may
        if (separator <= KeyPrefix.Length)
            return null;
        var id = presented[KeyPrefix.Length..separator];
        if (!Current().TryGetValue(id, out var client))
            return null;
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(presented)), Encoding.ASCII.GetBytes(client.KeyHash))
            ? client
            : null;
    }

    private static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private IReadOnlyDictionary<string, ApiClient> Current()
    {
        var changed = File.Exists(Path) ? File.GetLastWriteTimeUtc(Path) : DateTime.MinValue;
        if (changed == _readAt)
            return _clients;
        lock (_lock)
            return Read();
    }

    private IReadOnlyDictionary<string, ApiClient> Read()
    {
        if (!File.Exists(Path))
        {
            _readAt = DateTime.MinValue;
            return _clients = new Dictionary<string, ApiClient>();
        }

        SecretFiles.CheckOwnerOnly(Path);
        var changed = File.GetLastWriteTimeUtc(Path);
        var clients = JsonSerializer.Deserialize<List<ApiClient>>(File.ReadAllBytes(Path), Json)
                      ?? throw new InvalidDataException($"{Path} is empty");
        _clients = clients.ToDictionary(c => c.Id, StringComparer.Ordinal);
        _readAt = changed;
        return _clients;
    }

    private void Save(IEnumerable<ApiClient> clients)
    {
        SecretFiles.Write(Path, JsonSerializer.SerializeToUtf8Bytes(clients.OrderBy(c => c.Id, StringComparer.Ordinal).ToList(), Json));
        Read();
    }
}
