using System.Text;
using Cpns.Actors;
using Cpns.Actors.Common;
using Cpns.Actors.Local;
using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cpns.Host.Api;

/// <summary>
/// The operator's interface to the server node: inventory and leases, service groups (the same rules and ACLs as the
/// protocol path, with the operator's authority), credential revocation, status and presence, device management,
/// charging statements and exports, the key epoch and LKH tree size of each group, and the cluster's state.
/// </summary>
public static class OperatorApi
{
    public static void Map(RouteGroupBuilder op)
    {
        op.MapGet("/inventory", Inventory).WithSummary("Registered PN GWs and PNEs").Produces<Inventory>();
        op.MapPost("/devices", Provision).WithSummary("Provision a device for enrolment: its one-time token, shown only now")
            .Produces<ProvisionedView>(StatusCodes.Status201Created);
        op.MapGet("/devices/{deviceId}/lease", Lease).WithSummary("A device's registration lease").Produces<Lease>();
        op.MapGet("/devices/{deviceId}/status", Status).WithSummary("A device's status and reachability").Produces<EntityStatus>();
        op.MapGet("/devices/{deviceId}/presence", Presence).WithSummary("A device's status as a PIDF document (RFC 3863)")
            .Produces<string>(contentType: "application/pidf+xml");
        op.MapPost("/devices/{deviceId}/revoke", Revoke).WithSummary("Revoke a device's credentials (its PNEs too, for a PN GW)")
            .Produces<CredentialRevocationAccepted>();
        op.MapPost("/devices/{deviceId}/dm", Manage).WithSummary("Device management: Get, Replace or Exec on the device's tree")
            .Produces<DmResult>();

        op.MapGet("/groups", ListGroups).WithSummary("Every service group").Produces<GroupList>();
        op.MapGet("/groups/{groupId}", GetGroup).WithSummary("One service group with its ACL").Produces<GroupState>();
        op.MapPost("/groups", CreateGroup).WithSummary("Create a service group").Produces<GroupAccepted>(StatusCodes.Status201Created);
        op.MapPost("/groups/{groupId}/members", AddMember).WithSummary("Add a member (it receives the group's key)")
            .Produces<GroupAccepted>();
        op.MapDelete("/groups/{groupId}/members/{memberId}", RemoveMember).WithSummary("Remove a member (the group rekeys)")
            .Produces<GroupAccepted>();
        op.MapPut("/groups/{groupId}/grants/{subjectId}", Grant).WithSummary("Set a subject's privilege on the group")
            .Produces<GroupAccepted>();
        op.MapDelete("/groups/{groupId}", DeleteGroup).WithSummary("Delete a group (its key is revoked everywhere)")
            .Produces<GroupAccepted>();
        op.MapGet("/groups/{groupId}/keys", GroupKeys).WithSummary("The group's current key epoch and LKH tree size (never a key)")
            .Produces<GroupKeysView>();

        op.MapGet("/usage", Usage).WithSummary("Usage records matching every given criterion").Produces<UsageSummary>();
        op.MapGet("/charging/statement", Statement).WithSummary("A charging statement for a user, a group, or everyone")
            .Produces<ChargingStatement>();
        op.MapGet("/charging/export", Export).WithSummary("Every charging record of a period as CSV or JSON")
            .Produces<string>(contentType: "text/csv");
        op.MapGet("/cluster", Cluster).WithSummary("Cluster members, Group Key Manager placement and acknowledged epochs")
            .Produces<ClusterStatus>();
    }

    private static IResult Answer<T>(object? answer, Func<T, IResult> ok, string function) => answer switch
    {
        T value => ok(value),
        null => Problems.Unavailable($"the {function} did not answer"),
        var refusal => Problems.From(refusal),
    };

    private static async Task<IResult> Inventory(ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<Inventory>(await server.AskAsync(server.Server.Registry, GetInventory.Instance, cancellationToken), Results.Ok, "registry");

    private static async Task<IResult> Provision(ProvisionBody body, ServerFunctions server, CancellationToken cancellationToken)
    {
        if (body.ValidDays is < 1 or > 365)
            return Problems.Invalid("a token is valid for 1 to 365 days");
        var expires = server.System.Scheduler.Now.AddDays(body.ValidDays).ToUnixTimeMilliseconds();
        if (body.PnSecurityCeiling is not null && body.Kind is not (EntityKind.PnGateway or EntityKind.Both))
            return Problems.Invalid("only a PN GW has a PN security ceiling");
        var (token, provision) = Enrolment.Provision(body.DeviceId, body.Kind, expires, body.PnSecurityCeiling);
        return await server.AskAsync(server.Server.Registry, new ProvisionDevices([provision]), cancellationToken) switch
            {
                DevicesProvisioned { DeviceIds.Count: 1 } => Results.Created($"/operator/v1/devices/{body.DeviceId}/lease",
                    new ProvisionedView(body.DeviceId, body.Kind, token, expires)),
                DevicesProvisioned refused => Problems.Of(StatusCodes.Status409Conflict, "provisioning", "Refused",
                    $"{body.DeviceId}: {refused.Refused.FirstOrDefault()?.Detail}"),
                _ => Problems.Unavailable("the registry did not answer"),
            };
    }

    private static async Task<IResult> Lease(string deviceId, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<Lease>(await server.AskAsync(server.Server.Registry, new GetLease(deviceId), cancellationToken),
            lease => lease.Registered ? Results.Ok(lease) : Problems.NotFound($"registered device {deviceId}"), "registry");

    private static async Task<IResult> Status(string deviceId, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<EntityStatus>(await server.AskAsync(server.Server.Status, new GetStatus(deviceId), cancellationToken), Results.Ok,
            "status function");

    private static async Task<IResult> Presence(string deviceId, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<PidfDocument>(await server.AskAsync(server.Server.Status, new GetPidf(deviceId), cancellationToken),
            pidf => Results.Text(pidf.Xml, "application/pidf+xml", Encoding.UTF8), "status function");

    private static async Task<IResult> Revoke(string deviceId, RevokeBody body, ServerFunctions server,
        CancellationToken cancellationToken)
    {
        if (!DeviceIds.IsValid(deviceId))
            return Problems.Invalid($"'{deviceId}' is not a device id");
        if (string.IsNullOrWhiteSpace(body.Reason) || body.Reason.Length > 500)
            return Problems.Invalid("a revocation needs a reason of 1 to 500 characters");
        return Answer<CredentialRevocationAccepted>(
            await server.AskAsync(server.Server.Registry, new RevokeCredential(deviceId, body.Reason), cancellationToken), Results.Ok,
            "registry");
    }

    private static async Task<IResult> Manage(string deviceId, DmBody body, ServerFunctions server, CancellationToken cancellationToken) =>
        await server.AskAsync(server.Server.Dm, new DmCommand(deviceId, body.Operation, body.Path, body.Value), cancellationToken) switch
        {
            DmResult { Status: DmStatus.Ok } result => Results.Ok(result),
            null => Problems.Unavailable("device management did not answer"),
            var refusal => Problems.From(refusal),
        };

    private static async Task<IResult> ListGroups(ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<GroupList>(await server.AskAsync(server.Server.Smf, Actors.Protocol.ListGroups.Instance, cancellationToken), Results.Ok, "SMF");

    private static async Task<IResult> GetGroup(string groupId, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<GroupState>(await server.AskAsync(server.Server.Smf, new GetGroup(groupId), cancellationToken),
            group => group.Exists ? Results.Ok(group) : Problems.NotFound($"group {groupId}"), "SMF");

    private static Task<object?> ChangeAsync(ServerFunctions server, ICpnsMessage change, CancellationToken cancellationToken) =>
        server.AskAsync(server.Server.Smf, new LocalRequest(change), cancellationToken);

    private static async Task<IResult> CreateGroup(NewGroupBody body, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<GroupAccepted>(await ChangeAsync(server, new Actors.Protocol.CreateGroup(body.GroupId, Operator.Id, body.Mode,
                body.Members, body.RequiredSecurityLevel, body.JoinPolicy), cancellationToken),
            accepted => Results.Created($"/operator/v1/groups/{accepted.GroupId}", accepted), "SMF");

    private static async Task<IResult> AddMember(string groupId, MemberBody body, ServerFunctions server,
        CancellationToken cancellationToken) =>
        Answer<GroupAccepted>(await ChangeAsync(server,
            new Actors.Protocol.AddMember(groupId, Operator.Id, body.MemberId, body.Privilege), cancellationToken), Results.Ok, "SMF");

    private static async Task<IResult> RemoveMember(string groupId, string memberId, ServerFunctions server,
        CancellationToken cancellationToken) =>
        Answer<GroupAccepted>(await ChangeAsync(server, new Actors.Protocol.RemoveMember(groupId, Operator.Id, memberId),
            cancellationToken), Results.Ok, "SMF");

    private static async Task<IResult> Grant(string groupId, string subjectId, GrantBody body, ServerFunctions server,
        CancellationToken cancellationToken) =>
        Answer<GroupAccepted>(await ChangeAsync(server, new GrantPrivilege(groupId, Operator.Id, subjectId, body.Privilege),
            cancellationToken), Results.Ok, "SMF");

    private static async Task<IResult> DeleteGroup(string groupId, ServerFunctions server, CancellationToken cancellationToken) =>
        Answer<GroupAccepted>(await ChangeAsync(server, new Actors.Protocol.DeleteGroup(groupId, Operator.Id), cancellationToken),
            Results.Ok, "SMF");

    private static async Task<IResult> GroupKeys(string groupId, ServerFunctions server, CancellationToken cancellationToken)
    {
        if (await server.AskAsync(server.Server.Smf, new GetGroup(groupId), cancellationToken) is not GroupState group)
            return Problems.Unavailable("the SMF did not answer");
        if (!group.Exists)
            return Problems.NotFound($"group {groupId}");
        if (await server.AskAsync(server.Server.Cskmf, new GetLkhState(groupId), cancellationToken) is not LkhState tree)
            return Problems.Unavailable("the CSKMF did not answer");
        return Results.Ok(new GroupKeysView(groupId, group.Mode, group.Epoch, tree.Members, tree.TreeEpoch));
    }

    private static async Task<IResult> Usage(ServerFunctions server, CancellationToken cancellationToken, string? entity = null,
        string? service = null, string? group = null, long fromMs = 0, long toMs = long.MaxValue) =>
        Answer<UsageSummary>(await server.AskAsync(server.Server.Usage, new QueryUsage(entity, service, group, fromMs, toMs),
            cancellationToken), Results.Ok, "usage function");

    private static async Task<IResult> Statement(ServerFunctions server, CancellationToken cancellationToken,
        StatementSubject subject = StatementSubject.All, string? id = null, long fromMs = 0, long toMs = long.MaxValue)
    {
        if (subject != StatementSubject.All && string.IsNullOrEmpty(id))
            return Problems.Invalid($"a {subject} statement needs ?id=");
        return Answer<ChargingStatement>(await server.AskAsync(server.Charging, new GetStatement(subject, id ?? "", fromMs, toMs),
            cancellationToken), Results.Ok, "charging function");
    }

    private static async Task<IResult> Export(ServerFunctions server, CancellationToken cancellationToken, string format = "csv",
        long fromMs = 0, long toMs = long.MaxValue)
    {
        if (format is not ("csv" or "json"))
            return Problems.Invalid("format is csv or json");
        return Answer<ChargingStatement>(await server.AskAsync(server.Charging, new GetStatement(StatementSubject.All, "", fromMs, toMs),
                cancellationToken),
            statement => format == "csv"
                ? Results.Text(ChargingExport.ToCsv(statement.Records), "text/csv", Encoding.UTF8)
                : Results.Text(ChargingExport.ToJson(statement.Records), "application/json", Encoding.UTF8), "charging function");
    }

    private static async Task<IResult> Cluster(ServerFunctions server, CancellationToken cancellationToken)
    {
        if (server.System.Settings.ProviderClass.Contains("Cluster", StringComparison.Ordinal) is false)
            return Problems.Of(StatusCodes.Status404NotFound, "cluster", "NotAClusterNode", "this server runs in one process, not in a cluster");
        return Answer<ClusterStatus>(await server.AskAsync(server.ClusterStatus, GetClusterStatus.Instance, cancellationToken), Results.Ok,
            "cluster status");
    }
}
