using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster router static</c>: a router artifact made without calibration data — the static router
/// with a uniform schedule — for benchmarks and baselines on any model, synthetic ones included.
/// </summary>
internal static class RouterCommand
{
    private static readonly Option<double?> Sparsity = CliOption.OptionalDouble("--sparsity", "S", "The mean sparsity over all blocks (required)");

    private static readonly Option<string> Out = CliOption.Text("--out", "ROUTER.json", "Where the router artifact is written (required)");

    public static Command Create()
    {
        var staticRouter = new Command("static", """
            A router artifact without calibration data: the static router (first token, then the most recent) with block 0 dense and the
            other blocks at S·L/(L−1), so the mean over all L blocks is S.
              router static --model PATH|ORG/NAME --sparsity S --out ROUTER.json
            """)
        {
            ModelOptionGroup.Model, Sparsity, Out,
        };
        staticRouter.SetAction(Static);
        return new Command("router", "Router artifacts made without calibration.") { staticRouter };
    }

    private static int Static(ParseResult parse)
    {
        string modelPath = ModelOptionGroup.ModelPath(parse);
        double sparsity = parse.GetValue(Sparsity) ?? throw new UsageException("--sparsity is required");
        string output = parse.Required(Out);

        using var checkpoint = Checkpoint.Open(modelPath);
        SparsitySchedule schedule;
        try
        {
            schedule = SparsitySchedule.DenseFirstBlock(sparsity, checkpoint.Config.Layers);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--sparsity {sparsity}: {e.Message}");
        }
        RouterArtifact.From(new StaticRouter(), schedule, ModelFingerprint.Of(checkpoint)).Save(output);
        Console.WriteLine($"wrote {output}: static router, mean sparsity {schedule.Mean:0.###} " +
            $"(block 0 dense, {schedule[1]:0.####} at blocks 1..{schedule.Blocks - 1})");
        return 0;
    }
}
