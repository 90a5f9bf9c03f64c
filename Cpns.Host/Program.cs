using System.CommandLine;
using Cpns.Host.Cli;

var root = new RootCommand(
    "cpns — the OMA Converged Personal Network Service (CPNS) enabler on Akka.NET: a CPNS Server, PN Gateways and " +
    "Personal Network Elements as actor hierarchies.")
{
    SimulateCommand.Create(),
    BenchCommand.Create(),
    StateCommand.Create(),
    ChargingCommand.Create(),
    ClusterCommands.Server(),
    ClusterCommands.Gateway(),
    ClusterCommands.Status(),
};

try
{
    // Ctrl-C and SIGTERM cancel the command; a cluster node then leaves its cluster cleanly, which takes a few seconds.
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
}
catch (Exception e) when (e is not OperationCanceledException)
{
    // A failure the command did not turn into an answer itself: one clear line, the details for a bug report.
    Console.Error.WriteLine($"cpns: {e.GetType().Name}: {e.Message}");
    if (Environment.GetEnvironmentVariable("CPNS_DEBUG") is "1")
        Console.Error.WriteLine(e);
    return 3;
}
