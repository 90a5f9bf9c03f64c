using System.Globalization;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Akka.Actor;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Host.Api;
using Microsoft.AspNetCore.Builder;

namespace Cpns.Tests.Support;

/// <summary>
/// A server node's HTTP API started on a free 127.0.0.1 port over a test's server entity, with its own deployment CA,
/// node certificate and client store in a temporary folder; clients are real <see cref="HttpClient"/>s over HTTPS that
/// check the node's certificate against that CA.
/// </summary>
public sealed partial class ApiUnderTest : IAsyncDisposable
{
    private readonly string _folder;
    private readonly DeploymentCertificates _deployment;
    private readonly List<HttpClient> _clients = new();

    private ApiUnderTest(string folder, DeploymentCertificates deployment, WebApplication app, ApiClientStore store)
    {
        _folder = folder;
        _deployment = deployment;
        App = app;
        Store = store;
        BaseAddress = ApiHost.BaseAddress(app);
    }

    public WebApplication App { get; }

    public ApiClientStore Store { get; }

    public Uri BaseAddress { get; }

    public static async Task<ApiUnderTest> StartAsync(ActorSystem system, ServerEndpoints server, IActorRef charging, int requestsPerSecond = 1000,
        long maxBodyBytes = 1_500_000)
    {
        var folder = Path.Combine(Path.GetTempPath(), "cpns-api-" + Guid.NewGuid().ToString("N"));
        var deployment = DeploymentCertificates.CreateAuthority(Path.Combine(folder, "tls"));
        var certificate = deployment.IssueNode("server");
        var store = new ApiClientStore(Path.Combine(folder, ApiClientStore.FileName));
        var app = ApiHost.Build(new ApiOptions
        {
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            Certificate = certificate,
            Clients = store,
            RequestsPerSecond = requestsPerSecond,
            Burst = requestsPerSecond,
            MaxBodyBytes = maxBodyBytes,
        }, system, server, charging);
        await app.StartAsync();
        return new ApiUnderTest(folder, deployment, app, store);
    }

    /// <summary>A client with a fresh key of the given role (or with no key at all).</summary>
    public HttpClient Client(string? id = null, ApiRole role = ApiRole.Ace)
    {
        var client = Anonymous();
        if (id is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Store.Add(id, role).Key);
        return client;
    }

    public HttpClient Anonymous()
    {
        var client = new HttpClient(ApiStatus.TrustingOnly(_deployment)) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        _clients.Add(client);
        return client;
    }

    /// <summary>The value of one Prometheus series (name and label filter as they appear in the scrape), 0 when absent.</summary>
    public static double Series(string scrape, string name, string labels = "")
    {
        foreach (Match match in SeriesLine().Matches(scrape))
        {
            if (match.Groups["name"].Value == name && match.Groups["labels"].Value.Contains(labels, StringComparison.Ordinal))
                return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
        }

        return 0;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>[-+0-9.eE]+|NaN|\+Inf)", RegexOptions.Multiline)]
    private static partial Regex SeriesLine();

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (Directory.Exists(_folder))
            Directory.Delete(_folder, recursive: true);
    }
}
