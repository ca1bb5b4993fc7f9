using System.CommandLine;
using System.CommandLine.Invocation;
using FtpCluster.Client;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Commands;
using FtpCluster.Compute.Models;

var root = new RootCommand("ftpcluster: pipeline-parallel LLM inference with FTP token pruning, in this process or on a cluster of silos.")
{
    GenerateCommand.Create(),
    ScoreCommand.Create(),
    CalibrateCommand.Create(),
    EvalCommand.Create(),
    ClusterCommand.Create(),
    BenchCommand.Create(),
    ModelsCommand.Create(),
    RouterCommand.Create(),
    RunCommand.Create(),
    JobsCommand.Create(),
    DevicesCommand.Create(),
};

// "ftpcluster help" has always meant --help.
var parse = root.Parse(args is ["help"] ? ["--help"] : args);
// Help, the version and [suggest] answer whatever else the line holds; anything else wrong is one line.
if (parse.Action is not { ClearsParseErrors: true } && UsageError.Of(parse) is { } usage)
{
    Console.Error.WriteLine($"ftpcluster: {usage}");
    return 2;
}

// Errors are ours to report, and signals too: System.CommandLine's own handling would end a command two
// seconds after Ctrl+C, before it has stopped the silos it started, and would swallow a second Ctrl+C.
var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
try
{
    // Only an async action stops on the token; a synchronous one keeps the default, ending at the first Ctrl+C.
    using var interruption = parse.Action is AsynchronousCommandLineAction ? new Interruption() : null;
    return await parse.InvokeAsync(invocation, interruption?.Token ?? CancellationToken.None);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 2;
}
catch (ModelFormatException e)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 1;
}
catch (OperationCanceledException)
{
    // Ctrl+C or SIGTERM: whatever the command started has been stopped on the way out.
    Console.Error.WriteLine("ftpcluster: interrupted");
    return 130;
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or TimeoutException or Orleans.Runtime.OrleansException)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 1;
}
