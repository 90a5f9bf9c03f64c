using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cpns.Host.Api;

/// <summary>
/// API keys (<c>Authorization: Bearer cpns_…</c>, or <c>X-Api-Key</c>) checked against the node's client store; the
/// client's role becomes the principal's role (<c>ace</c> or <c>operator</c>). Refusals are problem details.
/// </summary>
public sealed class ApiKeyAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiClientStore clients,
    IProblemDetailsService problems) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string AcePolicy = "ace";
    public const string OperatorPolicy = "operator";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = Request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..].Trim()
            : Request.Headers["X-Api-Key"].ToString();
        if (string.IsNullOrEmpty(presented))
            return Task.FromResult(AuthenticateResult.NoResult());
        if (clients.Authenticate(presented) is not { } client)
            return Task.FromResult(AuthenticateResult.Fail("the API key is not one of this node's clients"));
        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, client.Id),
            new Claim(ClaimTypes.Role, client.Role == ApiRole.Ace ? AcePolicy : OperatorPolicy),
        ], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        var presented = Request.Headers.Authorization.Count > 0 || Request.Headers.ContainsKey("X-Api-Key");
        await WriteAsync("Unauthenticated", presented
            ? "the API key is not one of this node's clients (removed, mistyped, or from another node)"
            : "an API key is needed: Authorization: Bearer cpns_<client>_<secret> (cpns api-client add)");
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await WriteAsync("Forbidden", "this client's role may not use this route");
    }

    private async Task WriteAsync(string reason, string detail) =>
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = Response.StatusCode, Type = Problems.Type("auth", reason), Title = reason, Detail = detail },
        });
}

/// <summary>The authenticated client of a request, as the handlers need it.</summary>
public sealed record ApiCaller(string ClientId, ApiRole Role)
{
    /// <summary>The entity id an ACE acts under in the enabler (its services' offerer, its deliveries' sender).</summary>
    public string EntityId => Role == ApiRole.Ace ? $"ace:{ClientId}" : ClientId;

    public static ApiCaller Of(ClaimsPrincipal user) =>
        new(user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("no authenticated client"),
            user.IsInRole(ApiKeyAuthentication.OperatorPolicy) ? ApiRole.Operator : ApiRole.Ace);
}
