using System.Security.Claims;
using System.Text;
using Cpns.Actors;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cpns.Host.Api;

/// <summary>
/// CPNS-5 for Application/Content Entities: publish, update and withdraw their services, search the directory, deliver
/// content to service groups and read back what became of it, and read the usage and charging of their own services.
/// An ACE acts as <c>ace:&lt;client id&gt;</c> and sees only what is its own.
/// </summary>
public static class AceApi
{
    public static void Map(RouteGroupBuilder ace)
    {
        ace.MapGet("/services", ListServices).WithSummary("The services this ACE publishes").Produces<IReadOnlyList<ServiceView>>();
        ace.MapPut("/services/{serviceId}", Publish).WithSummary("Publish a service, or update it (a new version)")
            .Produces<ServicePublished>();
        ace.MapDelete("/services/{serviceId}", Withdraw).WithSummary("Withdraw a service").Produces(StatusCodes.Status204NoContent);
        ace.MapGet("/search", Search).WithSummary("Search the Metadata Directory: ranked, paged, only what this ACE may see")
            .Produces<SearchResult>();
        ace.MapPost("/deliveries", Deliver)
            .WithSummary("Deliver content to a service group of one of this ACE's services (encrypted once, fanned out by the PN GWs)")
            .Produces<DeliveryView>(StatusCodes.Status201Created);
        ace.MapGet("/deliveries/{deliveryId}", GetDelivery).WithSummary("What became of a delivery").Produces<DeliveryView>();
        ace.MapGet("/usage", Usage).WithSummary("Usage of this ACE's services").Produces<UsageView>();
        ace.MapGet("/charging", Charging).WithSummary("Charging records of this ACE's services").Produces<ChargingStatement>();
    }

    private static async Task<IReadOnlyList<OfferedService>?> OwnServicesAsync(ServerFunctions server, ApiCaller caller,
        CancellationToken cancellationToken) =>
        (await server.AskAsync(server.Server.Directory, new GetOfferedServices(caller.EntityId), cancellationToken) as OfferedServices)?.Services;

    /// <summary>The ACE's privilege on a group, from the SMF's ACLs (the operator grants it), or null without an answer.</summary>
    private static async Task<Privilege?> PrivilegeOnAsync(ServerFunctions server, ApiCaller caller, string groupId,
        CancellationToken cancellationToken) =>
        await server.AskAsync(server.Server.Smf, new GetPrivileges(caller.EntityId), cancellationToken) is Privileges privileges
            ? privileges.ByGroup.GetValueOrDefault(groupId, Privilege.None)
            : null;

    private static async Task<IResult> ListServices(ClaimsPrincipal user, ServerFunctions server, CancellationToken cancellationToken) =>
        await OwnServicesAsync(server, ApiCaller.Of(user), cancellationToken) is { } services
            ? Results.Ok(services.Select(s => new ServiceView(s.Description, s.Version, s.ExpiresAtMs)).ToList())
            : Problems.Unavailable("the directory did not answer");

    private static async Task<IResult> Publish(string serviceId, ServiceBody body, ClaimsPrincipal user, ServerFunctions server,
        CancellationToken cancellationToken)
    {
        if (!DeviceIds.IsValid(serviceId))
            return Problems.Invalid($"'{serviceId}' is not a service id (1 to 128 letters, digits, '-', '_', '.' or ':')");
        var caller = ApiCaller.Of(user);
        // An ACE binds a service only to a group it manages, as an entity must on the protocol path.
        if (body.GroupId is not null)
        {
            switch (await PrivilegeOnAsync(server, caller, body.GroupId, cancellationToken))
            {
                case null:
                    return Problems.Unavailable("the SMF did not answer");
                case < Privilege.Manage and var held:
                    return Problems.Of(StatusCodes.Status403Forbidden, "directory", "NotAuthorized",
                        $"{caller.EntityId} holds {held} on group {body.GroupId}; binding a service to it needs Manage");
            }
        }

        var description = new ServiceDescription(serviceId, body.Name, caller.EntityId, body.Type, body.Keywords,
            body.Attributes ?? new Dictionary<string, string>(), body.RequiredCodecs ?? [], body.MinBitrateKbps, body.RequiredPrivilege,
            body.GroupId, body.LifetimeSeconds);
        return await server.AskAsync(server.Server.Directory, new LocalRequest(new PublishService(description)), cancellationToken) switch
        {
            ServicePublished published => Results.Ok(published),
            null => Problems.Unavailable("the directory did not answer"),
            var refusal => Problems.From(refusal),
        };
    }

    private static async Task<IResult> Withdraw(string serviceId, ClaimsPrincipal user, ServerFunctions server,
        CancellationToken cancellationToken) =>
        await server.AskAsync(server.Server.Directory, new LocalRequest(new WithdrawService(serviceId, ApiCaller.Of(user).EntityId)),
                cancellationToken) switch
            {
                ServiceWithdrawn => Results.NoContent(),
                // Another offerer's service is not this ACE's business: it does not exist for it.
                DirectoryRejected { Error: DirectoryError.NotOfferer } => Problems.NotFound($"service {serviceId} of this ACE"),
                null => Problems.Unavailable("the directory did not answer"),
                var refusal => Problems.From(refusal),
            };

    private static async Task<IResult> Search(ClaimsPrincipal user, ServerFunctions server, CancellationToken cancellationToken,
        string? keywords = null, string[]? filter = null, int offset = 0, int limit = 20)
    {
        var filters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in filter ?? [])
        {
            var split = item.IndexOf('=');
            if (split <= 0)
                return Problems.Invalid($"filter '{item}' is not name=value");
            filters[item[..split]] = item[(split + 1)..];
        }

        var words = (keywords ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var query = new SearchServices(ApiCaller.Of(user).EntityId, words, filters, offset, limit);
        return await server.AskAsync(server.Server.Directory, new LocalRequest(query), cancellationToken) switch
        {
            SearchResult result => Results.Ok(result),
            null => Problems.Unavailable("the directory did not answer"),
            var refusal => Problems.From(refusal),
        };
    }

    /// <summary>The delivery id the enabler knows: the ACE's own id in its namespace, so ACEs never collide or see each other's.</summary>
    private static string DeliveryIdOf(ApiCaller caller, string deliveryId) => $"{caller.EntityId}:{deliveryId}";

    private static async Task<IResult> Deliver(DeliveryBody body, ClaimsPrincipal user, ServerFunctions server,
        CancellationToken cancellationToken)
    {
        var caller = ApiCaller.Of(user);
        if (!DeviceIds.IsValid(body.DeliveryId) || !DeviceIds.IsValid(DeliveryIdOf(caller, body.DeliveryId)))
            return Problems.Invalid($"'{body.DeliveryId}' is not a delivery id (letters, digits, '-', '_', '.', ':'; short enough to carry the ACE's id)");
        if ((body.Text is null) == (body.Content is null))
            return Problems.Invalid("give the content as exactly one of text (UTF-8) or content (base64)");
        byte[] payload;
        try
        {
            payload = body.Text is not null ? Encoding.UTF8.GetBytes(body.Text) : Convert.FromBase64String(body.Content!);
        }
        catch (FormatException)
        {
            return Problems.Invalid("content is not base64");
        }

        if (await OwnServicesAsync(server, caller, cancellationToken) is not { } services)
            return Problems.Unavailable("the directory did not answer");
        if (services.FirstOrDefault(s => s.Description.ServiceId == body.ServiceId) is not { } service)
            return Problems.Of(StatusCodes.Status403Forbidden, "delivery", "NotOfferer", $"{body.ServiceId} is not a service of {caller.EntityId}");
        var groupId = body.GroupId ?? service.Description.GroupId;
        if (groupId is null)
            return Problems.Invalid($"{body.ServiceId} is bound to no service group: name the group");
        if (service.Description.GroupId is { } bound && bound != groupId)
            return Problems.Of(StatusCodes.Status403Forbidden, "delivery", "NotAuthorized", $"{body.ServiceId} is bound to group {bound}, not {groupId}");
        switch (await PrivilegeOnAsync(server, caller, groupId, cancellationToken))
        {
            case null:
                return Problems.Unavailable("the SMF did not answer");
            case < Privilege.Operate and var held:
                return Problems.Of(StatusCodes.Status403Forbidden, "delivery", "NotAuthorized",
                    $"{caller.EntityId} holds {held} on group {groupId}; delivering to it needs Operate");
        }

        var request = new DeliverContent(DeliveryIdOf(caller, body.DeliveryId), caller.EntityId, body.ServiceId, groupId,
            Octets.Own(payload), body.TargetDeviceId);
        return await server.AskAsync(server.Server.Delivery, request, cancellationToken) switch
        {
            ContentAccepted => Results.Created($"/ace/v1/deliveries/{body.DeliveryId}", await RecordAsync(server, caller, body.DeliveryId, cancellationToken)),
            null => Problems.Unavailable("the delivery function did not answer"),
            var refusal => Problems.From(refusal),
        };
    }

    private static DeliveryView View(string deliveryId, string serviceId, ContentAccepted accepted, long atMs) =>
        new(deliveryId, serviceId, accepted.GroupId, accepted.Epoch, accepted.CiphertextBytes, accepted.Gateways, accepted.Unplaced, atMs);

    private static async Task<DeliveryView?> RecordAsync(ServerFunctions server, ApiCaller caller, string deliveryId,
        CancellationToken cancellationToken) =>
        await server.AskAsync(server.Server.Delivery, new GetDelivery(DeliveryIdOf(caller, deliveryId)), cancellationToken) is
            DeliveryRecord { Accepted: { } accepted } record && record.SenderId == caller.EntityId
            ? View(deliveryId, record.ServiceId!, accepted, record.AcceptedAtMs)
            : null;

    private static async Task<IResult> GetDelivery(string deliveryId, ClaimsPrincipal user, ServerFunctions server,
        CancellationToken cancellationToken) =>
        await RecordAsync(server, ApiCaller.Of(user), deliveryId, cancellationToken) is { } view
            ? Results.Ok(view)
            : Problems.NotFound($"delivery {deliveryId} of this ACE");

    private static async Task<IResult> Usage(ClaimsPrincipal user, ServerFunctions server, CancellationToken cancellationToken,
        long fromMs = 0, long toMs = long.MaxValue)
    {
        if (await OwnServicesAsync(server, ApiCaller.Of(user), cancellationToken) is not { } services)
            return Problems.Unavailable("the directory did not answer");
        var records = new List<UsageRecord>();
        foreach (var service in services)
        {
            if (await server.AskAsync(server.Server.Usage, new QueryUsage(ServiceId: service.Description.ServiceId, FromMs: fromMs, ToMs: toMs),
                    cancellationToken) is not UsageSummary summary)
                return Problems.Unavailable("the usage function did not answer");
            records.AddRange(summary.Records);
        }

        return Results.Ok(new UsageView(services.Select(s => s.Description.ServiceId).ToList(), records.Sum(r => r.Sessions),
            records.Sum(r => r.BytesUp), records.Sum(r => r.BytesDown), records.Sum(r => r.DurationMs), records));
    }

    private static async Task<IResult> Charging(ClaimsPrincipal user, ServerFunctions server, CancellationToken cancellationToken,
        long fromMs = 0, long toMs = long.MaxValue)
    {
        var caller = ApiCaller.Of(user);
        if (await OwnServicesAsync(server, caller, cancellationToken) is not { } services)
            return Problems.Unavailable("the directory did not answer");
        if (await server.AskAsync(server.Charging, new GetStatement(StatementSubject.All, "", fromMs, toMs), cancellationToken)
            is not ChargingStatement all)
            return Problems.Unavailable("the charging function did not answer");
        var own = services.Select(s => s.Description.ServiceId).ToHashSet(StringComparer.Ordinal);
        var records = all.Records.Where(r => own.Contains(r.ServiceId)).ToList();
        return Results.Ok(all with
        {
            Subject = StatementSubject.User,
            SubjectId = caller.EntityId,
            Records = records,
            TotalVolumeBytes = records.Sum(r => r.VolumeBytes),
            TotalSessions = records.Sum(r => r.Sessions),
            TotalUnits = records.Sum(r => r.Units),
            TotalAmount = records.Sum(r => r.Amount),
        });
    }
}
