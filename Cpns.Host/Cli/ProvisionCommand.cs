using System.CommandLine;
using Cpns.Actors;
using Cpns.Actors.Protocol;
using Cpns.Actors.Distributed;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Host.Provisioning;

namespace Cpns.Host.Cli;

/// <summary>
/// <c>cpns provision</c>: the operator allows a gateway node's PN GWs and PNEs to enrol. Each device gets a one-time
/// token (kept with the gateway node's identities, <c>identities/&lt;name&gt;/&lt;id&gt;.enrol</c>); the server node learns
/// only the tokens' keys, from a file dropped in its data folder's <c>provisioning/</c> inbox. Devices already enrolled
/// need nothing: an id stays bound to its keys.
/// </summary>
public static class ProvisionCommand
{
    public static Command Create()
    {
        var data = new CommonOptions().Data;
        var gatewayData = new Option<string?>("--gateway-data")
        {
            Description = "The gateway node's data folder, where its tokens go (default: the same as --data, one machine)",
        };
        var name = new Option<string>("--name") { Description = "The gateway node's --name: its devices are <name>-g1.., <name>-p1..", Required = true };
        var gateways = new Option<int>("--gateways") { Description = "PN GWs of that node to provision", DefaultValueFactory = _ => 1 };
        var pnes = new Option<int>("--pnes") { Description = "PNEs of that node to provision", DefaultValueFactory = _ => 4 };
        var days = new Option<int>("--valid-days") { Description = "Days the tokens stay valid for a first enrolment", DefaultValueFactory = _ => 7 };
        var pnSecurity = new Option<SecurityLevel?>("--pn-security")
        {
            Description = "The highest PN security level these PN GWs may claim (None, Low, Medium, High; default: any): " +
                          "it goes into their credentials, and the server never holds their PNs above it",
        };
        var command = new Command("provision",
            "Provision a gateway node's PN GWs and PNEs for enrolment: a one-time token each for the node, their keys for the " +
            "server node (run it with the server node's --data; the server takes them within a second, also when started later)")
        {
            data, gatewayData, name, gateways, pnes, days, pnSecurity,
        };
        OptionRules.AtLeast(gateways, 0);
        OptionRules.AtLeast(pnes, 0);
        OptionRules.AtLeast(days, 1);
        command.Validators.Add(result =>
        {
            if (result.ValueOf(name) is { } given && !DeviceIds.IsValid($"{given}-g1"))
                result.AddError($"--name '{given}' does not make valid device ids");
        });
        command.SetAction(parse =>
        {
            var serverData = Path.GetFullPath(parse.GetValue(data)!);
            var prefix = parse.GetValue(name)!;
            var identities = new IdentityFiles(Path.Combine(Path.GetFullPath(parse.GetValue(gatewayData) ?? serverData), "identities", prefix));
            var expires = DateTimeOffset.UtcNow.AddDays(parse.GetValue(days)).ToUnixTimeMilliseconds();
            var devices = new List<DeviceProvision>();
            var ids = Enumerable.Range(1, parse.GetValue(gateways)).Select(i => ($"{prefix}-g{i}", EntityKind.PnGateway))
                .Concat(Enumerable.Range(1, parse.GetValue(pnes)).Select(j => ($"{prefix}-p{j}", EntityKind.Pne)));
            foreach (var (deviceId, kind) in ids)
            {
                var (token, provision) = Enrolment.Provision(deviceId, kind, expires,
                    kind == EntityKind.PnGateway ? parse.GetValue(pnSecurity) : null);
                identities.SaveEnrolmentToken(deviceId, token);
                devices.Add(provision);
            }

            if (devices.Count == 0)
            {
                Console.Error.WriteLine("cpns provision: nothing to provision (--gateways and --pnes are 0)");
                return 2;
            }

            var file = ProvisioningInbox.Drop(serverData, devices);
            Console.Out.WriteLine($"provisioned {devices.Count} devices of gateway node '{prefix}' ({devices[0].DeviceId} .. {devices[^1].DeviceId}): " +
                                  $"tokens in {identities.Folder}, keys for the server node in {file}");
            return KeyManagerOf(serverData, Path.GetFullPath(parse.GetValue(gatewayData) ?? serverData), prefix);
        });
        return command;
    }

    /// <summary>
    /// The gateway node's own Group Key Manager: identity, KEK, and a credential from the KMC (whose root key is in the
    /// server's key file, on this host). Made once; provisioning the node again keeps it.
    /// </summary>
    private static int KeyManagerOf(string serverData, string gatewayData, string nodeName)
    {
        var serverKeyFile = Path.Combine(serverData, ServerSecrets.FileName);
        if (!File.Exists(serverKeyFile))
        {
            Console.Out.WriteLine($"no server key file in {serverData} yet, so no key manager file for '{nodeName}': start the server " +
                                  "node once, then provision the node again");
            return 0;
        }

        try
        {
            var path = Path.Combine(gatewayData, KeyManagerSecrets.FileNameFor(nodeName));
            var existed = File.Exists(path);
            var manager = KeyManagerSecrets.LoadOrCreate(path, ServerSecrets.Load(serverKeyFile), nodeName, DateTimeOffset.UtcNow);
            Console.Out.WriteLine($"{(existed ? "kept" : "made")} the key manager {manager.Identity.DeviceId} of gateway node " +
                                  $"'{nodeName}' in {path} (copy it to that node, owner-only)");
            return 0;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"cpns provision: {e.Message}");
            return 2;
        }
    }
}
