using System.CommandLine;

namespace Cpns.Host.Cli;

/// <summary>The <c>cpns</c> command tree, for the executable and for the test that parses every command the README shows.</summary>
public static class CpnsCommandLine
{
    public static RootCommand Create() =>
        new("cpns — the OMA Converged Personal Network Service (CPNS) enabler on Akka.NET: a CPNS Server, PN Gateways and " +
            "Personal Network Elements as actor hierarchies.")
        {
            SimulateCommand.Create(),
            BenchCommand.Create(),
            StateCommand.Create(),
            ChargingCommand.Create(),
            ClusterCommands.Server(),
            ClusterCommands.Gateway(),
            ClusterCommands.Status(),
            CertsCommand.Create(),
            ApiClientCommand.Create(),
            ProvisionCommand.Create(),
        };
}
