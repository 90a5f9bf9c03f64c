using System.CommandLine;
using Cpns.Host.Cli;

var root = CpnsCommandLine.Create();

ParseResult? parse = null;
try
{
    parse = root.Parse(args);
    // Ctrl-C and SIGTERM cancel the command; a cluster node then leaves its cluster cleanly, which takes a few seconds.
    // Failures come here rather than to System.CommandLine's handler, which prints a stack trace.
    return await parse.InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = TimeSpan.FromSeconds(30),
        EnableDefaultExceptionHandler = false,
    });
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cpns: cancelled");
    return 130;
}
catch (Exception e)
{
    // A failure the command did not turn into an answer itself: one clear line; the details only when asked for.
    var inner = e is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : e;
    var command = parse?.CommandResult.Command.Name ?? args.FirstOrDefault(a => !a.StartsWith('-')) ?? "";
    Console.Error.WriteLine($"cpns {command}: {inner.Message} ({inner.GetType().Name})");
    if (args.Contains("DEBUG", StringComparer.OrdinalIgnoreCase) || Environment.GetEnvironmentVariable("CPNS_DEBUG") is "1")
        Console.Error.WriteLine(inner);
    return 3;
}
