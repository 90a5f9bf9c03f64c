using System.CommandLine;
using Cpns.Actors.Security;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary>
/// <c>cpns certs</c>: the deployment's TLS certificates for the node transport — the deployment CA (made once) and a
/// certificate per node. Run where the operator keeps the CA key; copy ca.crt and a node's .pfx to that node.
/// </summary>
public static class CertsCommand
{
    public static Command Create()
    {
        var data = new CommonOptions().Data;
        var certs = new Option<string?>("--certs")
        {
            Description = $"Folder of the deployment's certificates (default: {ClusterCommands.CertsSubfolder}/ in --data)",
        };
        var nodes = new Option<string[]>("--node")
        {
            Description = "Issue a certificate for this node name (repeat for several; e.g. server, gateway-a, status)",
            AllowMultipleArgumentsPerToken = true,
        };
        var hostnames = new Option<string[]>("--hostname")
        {
            Description = "Also name this host or IP address in the node certificates issued now (127.0.0.1 and localhost always are)",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("certs",
            "Make the deployment CA (once) and node certificates for the mutual TLS between cluster nodes; lists what the " +
            "folder holds. The CA key (ca.key) stays with the operator; a node gets ca.crt and its own <node>.pfx")
        {
            data, certs, nodes, hostnames,
        };
        command.Validators.Add(result =>
        {
            foreach (var node in result.ValueOf(nodes) ?? [])
            {
                if (!DeploymentCertificates.IsValidNodeName(node))
                    result.AddError($"--node '{node}' is not a node name (letters, digits, '-', '_', '.', at most 64)");
            }
        });
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(certs) is { } given
                ? Path.GetFullPath(given)
                : Path.Combine(Path.GetFullPath(parse.GetValue(data)!), ClusterCommands.CertsSubfolder);
            var deployment = DeploymentCertificates.ExistIn(folder)
                ? DeploymentCertificates.Open(folder)
                : Announce(DeploymentCertificates.CreateAuthority(folder), $"made a new deployment CA in {folder}");
            foreach (var node in parse.GetValue(nodes) ?? [])
            {
                if (deployment.HasNode(node))
                {
                    AnsiConsole.MarkupLine($"[grey]node '{Markup.Escape(node)}' already has a certificate; kept[/]");
                    continue;
                }

                if (!deployment.CanIssue)
                {
                    Console.Error.WriteLine($"cpns certs: {folder} holds no CA key ({DeploymentCertificates.CaKeyFile}); " +
                                            "issue node certificates where the operator keeps it");
                    return 2;
                }

                var issued = deployment.IssueNode(node, parse.GetValue(hostnames));
                AnsiConsole.MarkupLine($"issued [bold]{Markup.Escape(node)}[/] ({Markup.Escape(issued.Subject)}, until {issued.NotAfter:yyyy-MM-dd})");
            }

            AnsiConsole.Write(Listing(deployment));
            return 0;
        });
        return command;
    }

    private static DeploymentCertificates Announce(DeploymentCertificates deployment, string line)
    {
        AnsiConsole.MarkupLine(Markup.Escape(line));
        return deployment;
    }

    private static Table Listing(DeploymentCertificates deployment)
    {
        var table = new Table().Title($"deployment certificates in {Markup.Escape(deployment.Folder)}")
            .AddColumn("file").AddColumn("what").AddColumn("who keeps it");
        table.AddRow(DeploymentCertificates.CaCertificateFile, Markup.Escape($"CA certificate ({deployment.Authority.Subject}, SHA-256 " +
                                                                             $"{deployment.Authority.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256)[..16]}…)"),
            "every node (public)");
        if (deployment.CanIssue)
            table.AddRow(DeploymentCertificates.CaKeyFile, "CA private key", "[yellow]the operator only: never copy it to a node[/]");
        foreach (var file in Directory.EnumerateFiles(deployment.Folder, "*.pfx").Order(StringComparer.Ordinal))
        {
            var node = Path.GetFileNameWithoutExtension(file);
            table.AddRow(Markup.Escape(Path.GetFileName(file)), "node certificate and private key", $"node '{Markup.Escape(node)}' only");
        }

        return table;
    }
}
