using System.Text;
using Cpns.Actors.Protocol;
using Microsoft.AspNetCore.Http;

namespace Cpns.Host.Api;

/// <summary>
/// RFC 9457 problem details for every refusal: a stable <c>type</c> per refusal (<c>urn:cpns:problem:&lt;area&gt;:&lt;reason&gt;</c>),
/// the HTTP status that fits it, and the enabler's own detail.
/// </summary>
public static class Problems
{
    public const string TypePrefix = "urn:cpns:problem:";

    public static string Type(string area, string reason) => $"{TypePrefix}{area}:{Kebab(reason)}";

    public static IResult Of(int status, string area, string reason, string detail, string? title = null) =>
        Results.Problem(detail: detail, statusCode: status, title: title ?? Sentence(reason), type: Type(area, reason));

    public static IResult Invalid(string detail) => Of(StatusCodes.Status400BadRequest, "request", "Invalid", detail);

    public static IResult NotFound(string what) => Of(StatusCodes.Status404NotFound, "request", "NotFound", $"no {what}");

    public static IResult Unavailable(string detail) =>
        Of(StatusCodes.Status503ServiceUnavailable, "server", "Unavailable", detail);

    /// <summary>The problem for a refusal record a server function answered with.</summary>
    public static IResult From(object refusal) => refusal switch
    {
        DirectoryRejected r => Of(Status(r.Error), "directory", r.Error.ToString(), r.Detail),
        SearchRejected r => Of(Status(r.Error), "directory", r.Error.ToString(), r.Detail),
        GroupRejected { Error: GroupError.Busy, RetryAfterMs: > 0 } r =>
            new RetryAfter(Of(StatusCodes.Status503ServiceUnavailable, "group", r.Error.ToString(), r.Detail), r.RetryAfterMs),
        GroupRejected r => Of(r.Error switch
        {
            GroupError.InvalidRequest => StatusCodes.Status400BadRequest,
            GroupError.UnknownGroup or GroupError.UnknownMember or GroupError.NotMember => StatusCodes.Status404NotFound,
            GroupError.GroupExists or GroupError.AlreadyMember or GroupError.InsufficientSecurityLevel => StatusCodes.Status409Conflict,
            GroupError.NotAuthorized => StatusCodes.Status403Forbidden,
            GroupError.TimedOut => StatusCodes.Status504GatewayTimeout,
            _ => StatusCodes.Status503ServiceUnavailable,
        }, "group", r.Error.ToString(), r.Detail),
        ContentRejected r => Of(r.Error switch
        {
            DeliveryError.InvalidRequest => StatusCodes.Status400BadRequest,
            DeliveryError.TooLarge => StatusCodes.Status413PayloadTooLarge,
            DeliveryError.UnknownGroup => StatusCodes.Status404NotFound,
            DeliveryError.NotAuthorized => StatusCodes.Status403Forbidden,
            DeliveryError.NoKey => StatusCodes.Status503ServiceUnavailable,
            _ => StatusCodes.Status409Conflict,
        }, "delivery", r.Error.ToString(), r.Detail),
        DmResult r => Of(r.Status switch
        {
            DmStatus.NotFound => StatusCodes.Status404NotFound,
            DmStatus.NotAllowed => StatusCodes.Status403Forbidden,
            DmStatus.BadValue => StatusCodes.Status400BadRequest,
            DmStatus.TimedOut => StatusCodes.Status504GatewayTimeout,
            _ => StatusCodes.Status503ServiceUnavailable,
        }, "dm", r.Status.ToString(), r.Detail),
        _ => Unavailable($"unexpected answer {refusal.GetType().Name}"),
    };

    /// <summary>A busy answer says when to come back, as the server function said it (RFC 9110 Retry-After, whole seconds).</summary>
    private sealed class RetryAfter(IResult problem, int retryAfterMs) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfterMs / 1000.0)).ToString();
            return problem.ExecuteAsync(httpContext);
        }
    }

    private static int Status(DirectoryError error) => error switch
    {
        DirectoryError.InvalidDescription or DirectoryError.InvalidQuery => StatusCodes.Status400BadRequest,
        DirectoryError.UnknownService => StatusCodes.Status404NotFound,
        DirectoryError.NotOfferer or DirectoryError.NotAuthorized => StatusCodes.Status403Forbidden,
        _ => StatusCodes.Status503ServiceUnavailable,
    };

    /// <summary>The problem type of a bare HTTP status (401, 403, 404, 413, 429, ...), for the status-code pages.</summary>
    public static string TypeOfStatus(int status) => status switch
    {
        StatusCodes.Status400BadRequest => Type("request", "Invalid"),
        StatusCodes.Status401Unauthorized => Type("auth", "Unauthenticated"),
        StatusCodes.Status403Forbidden => Type("auth", "Forbidden"),
        StatusCodes.Status404NotFound => Type("request", "NotFound"),
        StatusCodes.Status405MethodNotAllowed => Type("request", "MethodNotAllowed"),
        StatusCodes.Status413PayloadTooLarge => Type("request", "TooLarge"),
        StatusCodes.Status415UnsupportedMediaType => Type("request", "UnsupportedMediaType"),
        StatusCodes.Status429TooManyRequests => Type("request", "RateLimited"),
        _ => Type("server", status >= 500 ? "Error" : "Status" + status),
    };

    private static string Kebab(string name)
    {
        var text = new StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0)
                text.Append('-');
            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString();
    }

    private static string Sentence(string name)
    {
        var kebab = Kebab(name).Replace('-', ' ');
        return char.ToUpperInvariant(kebab[0]) + kebab[1..];
    }
}
