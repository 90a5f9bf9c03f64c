using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;

namespace Cpns.Host.Api;

/// <summary><c>cpns status --api</c>: the cluster's state from a server node's HTTP API, as an operator client.</summary>
public static class ApiStatus
{
    /// <summary>A handler that accepts exactly the node certificates of <paramref name="deployment"/>'s CA, nothing else.</summary>
    public static HttpClientHandler TrustingOnly(DeploymentCertificates deployment) => new()
    {
        ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && deployment.IsIssuedBy(certificate, out _),
    };

    /// <summary>An HTTP client that trusts exactly the deployment CA of <paramref name="certsFolder"/> for the node's certificate.</summary>
    public static HttpClient Client(Uri baseAddress, string apiKey, string certsFolder, TimeSpan timeout)
    {
        var client = new HttpClient(TrustingOnly(DeploymentCertificates.Open(certsFolder))) { BaseAddress = baseAddress, Timeout = timeout };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return client;
    }

    public static async Task<(ClusterStatus? Status, string? Problem)> GetAsync(Uri api, string apiKey, string certsFolder, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        if (!DeploymentCertificates.ExistIn(certsFolder))
            return (null, $"no deployment CA (ca.crt) in {certsFolder} to check the node's certificate with: pass --certs");
        using var client = Client(api, apiKey, certsFolder, timeout);
        try
        {
            using var response = await client.GetAsync("operator/v1/cluster", cancellationToken);
            if (response.IsSuccessStatusCode)
                return (await response.Content.ReadFromJsonAsync<ClusterStatus>(ApiHost.Json, cancellationToken), null);
            var problem = await response.Content.ReadAsStringAsync(cancellationToken);
            var detail = TryDetail(problem);
            return (null, $"{api} answered {(int)response.StatusCode} {response.ReasonPhrase}{(detail is null ? "" : $": {detail}")}");
        }
        catch (HttpRequestException e)
        {
            return (null, $"no answer from {api}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"no answer from {api} within {timeout.TotalSeconds:0} s");
        }
    }

    private static string? TryDetail(string problem)
    {
        try
        {
            return JsonDocument.Parse(problem).RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
