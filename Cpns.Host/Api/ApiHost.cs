using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Akka.Actor;
using Akka.Persistence;
using Cpns.Actors.Common;
using Cpns.Actors.Protocol;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Scalar.AspNetCore;

namespace Cpns.Host.Api;

/// <summary>How the server node's HTTP API listens and whom it lets in.</summary>
public sealed record ApiOptions
{
    /// <summary>Address and port, e.g. 127.0.0.1:8443 (port 0: any free port).</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>The node's certificate from the deployment CA: the API is HTTPS only.</summary>
    public required X509Certificate2 Certificate { get; init; }

    public required ApiClientStore Clients { get; init; }

    /// <summary>Requests a client may make per second on average, and in one burst.</summary>
    public int RequestsPerSecond { get; init; } = 50;

    public int Burst { get; init; } = 100;

    /// <summary>The largest request body: content up to the enabler's content limit, in base64, with room for the rest.</summary>
    public long MaxBodyBytes { get; init; } = 1_500_000;

    public TimeSpan AskTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a readiness probe waits for the journal and the registry.</summary>
    public TimeSpan HealthTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public static bool TryParseListen(string? text, out IPEndPoint endpoint)
    {
        endpoint = null!;
        if (text is null || !IPEndPoint.TryParse(text, out var parsed) || !text.Contains(':'))
            return false;
        endpoint = parsed;
        return true;
    }
}

/// <summary>
/// The server node's HTTP API (ASP.NET Core minimal APIs): CPNS-5 for ACEs under <c>/ace/v1</c>, the operator's
/// interface under <c>/operator/v1</c>, Prometheus metrics at <c>/metrics</c>, liveness and readiness at
/// <c>/health/live</c> and <c>/health/ready</c>, the OpenAPI document at <c>/openapi/v1.json</c> and a readable API
/// page at <c>/docs</c>. Every route is a thin translation to the server functions' node-local requests.
/// </summary>
public static class ApiHost
{
    public const string NodeMeterName = "Cpns.Node";
    private const string RatePolicy = "per-client";

    public static readonly JsonSerializerOptions Json = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    private static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.Converters.Add(new JsonStringEnumConverter());
        options.RespectNullableAnnotations = true;
        options.RespectRequiredConstructorParameters = true;
        return options;
    }

    /// <param name="charging">The server's charging function (<see cref="Deployment.ChargingOf"/>), which no other entity reaches.</param>
    public static WebApplication Build(ApiOptions options, ActorSystem system, ServerEndpoints server, IActorRef charging)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "cpns" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            kestrel.Listen(options.Listen, listen => listen.UseHttps(options.Certificate));
        });

        var services = builder.Services;
        services.ConfigureHttpJsonOptions(json => Configure(json.SerializerOptions));
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            if (context.ProblemDetails.Type is null or { Length: 0 } || context.ProblemDetails.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal))
                context.ProblemDetails.Type = Problems.TypeOfStatus(status);
            // What was wrong with the request (a body that is not JSON, a field missing or null) is the client's to know.
            if (context.Exception is BadHttpRequestException bad)
                context.ProblemDetails.Detail ??= bad.InnerException?.Message ?? bad.Message;
        });
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(routes => routes.ThrowOnBadRequest = true);
        services.AddSingleton(options.Clients);
        services.AddSingleton(new ServerFunctions(system, server, charging, options.AskTimeout));
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiKeyAuthentication.AcePolicy, policy => policy.RequireRole(ApiKeyAuthentication.AcePolicy))
            .AddPolicy(ApiKeyAuthentication.OperatorPolicy, policy => policy.RequireRole(ApiKeyAuthentication.OperatorPolicy));
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(RatePolicy, context => RateLimitPartition.GetTokenBucketLimiter(
                context.User.Identity?.Name ?? context.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value
                ?? $"address:{context.Connection.RemoteIpAddress}",
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.Burst,
                    TokensPerPeriod = options.RequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
            limiter.OnRejected = async (rejected, cancellationToken) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                rejected.HttpContext.Response.Headers.RetryAfter = seconds.ToString();
                await rejected.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = rejected.HttpContext,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests, Type = Problems.TypeOfStatus(StatusCodes.Status429TooManyRequests),
                        Title = "Rate limited", Detail = $"more than {options.RequestsPerSecond} requests a second; retry after {seconds} s",
                    },
                });
            };
        });
        services.AddHealthChecks()
            .AddCheck("actor-system", () => system.WhenTerminated.IsCompleted
                ? HealthCheckResult.Unhealthy("the actor system is terminated")
                : HealthCheckResult.Healthy(), ["live", "ready"])
            .AddCheck("cluster-member", () => ClusterMemberHealth(system), ["ready"])
            .AddAsyncCheck("journal", cancellationToken => JournalHealthAsync(system, options.HealthTimeout, cancellationToken), ["ready"])
            .AddAsyncCheck("registry", cancellationToken => RegistryHealthAsync(server, options.HealthTimeout, cancellationToken), ["ready"]);
        services.AddOpenApi(openApi => openApi.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "CPNS server node";
            document.Info.Description = "CPNS-5 for Application/Content Entities (/ace/v1) and the operator's interface (/operator/v1). " +
                                        "Authenticate with Authorization: Bearer <API key> (cpns api-client add).";
            return Task.CompletedTask;
        }));
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("cpns", serviceVersion: typeof(ApiHost).Assembly.GetName().Version?.ToString()))
            .WithMetrics(metrics => metrics
            .AddMeter(CpnsMetrics.MeterName, NodeMeterName, "Microsoft.AspNetCore.Hosting")
            .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));

        var app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = exception => exception is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
        });
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();

        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/docs", scalar => scalar.WithTitle("CPNS server node API").WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = check => check.Tags.Contains("live"), ResponseWriter = WriteHealth });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteHealth });
        app.MapPrometheusScrapingEndpoint("/metrics").RequireAuthorization(ApiKeyAuthentication.OperatorPolicy).RequireRateLimiting(RatePolicy);
        AceApi.Map(app.MapGroup("/ace/v1").WithTags("ACE (CPNS-5)").RequireAuthorization(ApiKeyAuthentication.AcePolicy).RequireRateLimiting(RatePolicy));
        OperatorApi.Map(app.MapGroup("/operator/v1").WithTags("Operator").RequireAuthorization(ApiKeyAuthentication.OperatorPolicy)
            .RequireRateLimiting(RatePolicy));

        var meter = new Meter(NodeMeterName);
        foreach (var (function, actor) in Functions(server))
        {
            meter.CreateObservableGauge("cpns.mailbox.depth", () => new Measurement<long>(MailboxDepth(actor),
                CpnsMetrics.Tag("function", function)), description: "Messages waiting in a server function's mailbox");
        }

        app.Lifetime.ApplicationStopped.Register(meter.Dispose);
        return app;
    }

    /// <summary>The address the API listens on once started (the port is known only then when 0 was asked for).</summary>
    public static Uri BaseAddress(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
    }

    private static IEnumerable<(string Function, IActorRef Actor)> Functions(ServerEndpoints server) =>
    [
        ("registry", server.Registry), ("smf", server.Smf), ("cskmf", server.Cskmf), ("capabilities", server.Capabilities),
        ("status", server.Status), ("dm", server.Dm), ("directory", server.Directory), ("delivery", server.Delivery), ("usage", server.Usage),
    ];

    private static long MailboxDepth(IActorRef actor) => actor is ActorRefWithCell local ? local.Underlying.NumberOfMessages : 0;

    private static HealthCheckResult ClusterMemberHealth(ActorSystem system)
    {
        if (!system.Settings.ProviderClass.Contains("Cluster", StringComparison.Ordinal))
            return HealthCheckResult.Healthy("not a cluster node");
        var self = Akka.Cluster.Cluster.Get(system).SelfMember;
        return self.Status == Akka.Cluster.MemberStatus.Up
            ? HealthCheckResult.Healthy($"member {self.Address} is up")
            : HealthCheckResult.Unhealthy($"member {self.Address} is {self.Status}");
    }

    /// <summary>A replay of a persistence id nobody uses: it reaches the database and back, writing nothing.</summary>
    private static async Task<HealthCheckResult> JournalHealthAsync(ActorSystem system, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            var journal = Persistence.Instance.Apply(system).JournalFor(null);
            var answer = await journal.Ask<object>(replyTo => new ReplayMessages(1, long.MaxValue, 1, "cpns-health-probe", replyTo),
                timeout, cancellationToken);
            return answer is RecoverySuccess
                ? HealthCheckResult.Healthy("the journal answers")
                : HealthCheckResult.Unhealthy($"the journal refused a replay: {(answer as ReplayMessagesFailure)?.Cause.Message ?? answer.GetType().Name}");
        }
        catch (AskTimeoutException)
        {
            return HealthCheckResult.Unhealthy($"the journal did not answer within {timeout.TotalSeconds:0.#} s");
        }
    }

    private static async Task<HealthCheckResult> RegistryHealthAsync(ServerEndpoints server, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            var inventory = await server.Registry.Ask<Inventory>(GetInventory.Instance, timeout, cancellationToken);
            return HealthCheckResult.Healthy($"{inventory.Gateways.Count} PN GWs, {inventory.Pnes.Count} PNEs registered");
        }
        catch (AskTimeoutException)
        {
            return HealthCheckResult.Unhealthy($"the registry did not answer within {timeout.TotalSeconds:0.#} s");
        }
    }

    private static Task WriteHealth(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), detail = e.Value.Description }),
        }, Json));
    }
}
