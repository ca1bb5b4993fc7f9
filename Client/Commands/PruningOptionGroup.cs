using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Ftp;

namespace FtpCluster.Client.Commands;

/// <summary>
/// FTP, the options that make <see cref="PruningOptions"/>: --router, --routing, --stage-aware,
/// --prune-newest. Defined once; <c>bench model</c> takes --router and --routing, <c>eval</c> --stage-aware.
/// </summary>
internal static class PruningOptionGroup
{
    public static readonly Option<string> Router = CliOption.Text("--router", "ROUTER.json",
        "Prunes tokens with a router artifact (from calibrate, or router static): each block computes only the tokens the router keeps " +
        "at its sparsity; an artifact of another model is refused");

    public static readonly Option<RoutingMode?> Routing = CliOption.Parsed<RoutingMode?>("--routing", "one-pass|block",
        "In this process: decide every block's tokens once after block 0 (one-pass, the default and what a cluster does) or block by block",
        word => ParseRouting(word), RoutingModes.Names);

    public static readonly Option<bool> StageAware = CliOption.Flag("--stage-aware",
        "On a cluster: one set of tokens per stage, so a skipped token skips whole stages and never crosses to them");

    public static readonly Option<bool> PruneNewest = CliOption.Flag("--prune-newest",
        "Decode pruning: the router may skip a sequence's newest token as well (by default it is always computed)");

    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { Router, Routing, StageAware, PruneNewest }) command.Add(option);
    }

    /// <summary>The pruning options; null when no --router is given (the model runs dense).</summary>
    /// <param name="severalRouters">The command serves requests that pick a router (<c>run</c>): --router R[,R...].</param>
    public static PruningOptions? Bind(ParseResult parse, bool severalRouters = false)
    {
        string? router = parse.GetValue(Router);
        var routing = parse.GetValue(Routing);
        bool stageAware = parse.GetValue(StageAware), pruneNewest = parse.GetValue(PruneNewest);
        if (router is null)
        {
            if (routing is not null || stageAware || pruneNewest)
                throw new UsageException("--routing, --stage-aware and --prune-newest need --router ROUTER.json");
            return null;
        }
        string[] routers = severalRouters ? router.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [router];
        if (routers.Length == 0) throw new UsageException("--router needs ROUTER.json");
        return new PruningOptions([.. routers.Select(Path.GetFullPath)], routing ?? RoutingMode.OnePass, stageAware, pruneNewest);
    }

    private static RoutingMode ParseRouting(string word) => word switch
    {
        "one-pass" => RoutingMode.OnePass,
        "block" => RoutingMode.Block,
        _ => throw new UsageException($"--routing expects one-pass or block, got '{word}'"),
    };
}
