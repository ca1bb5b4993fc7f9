using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster router static</c>: a router artifact made without calibration data — the static router
/// with a uniform schedule — for benchmarks and baselines on any model, synthetic ones included.
/// </summary>
internal static class RouterCommand
{
    public static int Static(string[] args)
    {
        var a = new Arguments(args, new HashSet<string>());
        string modelPath = a.Required("model");
        double sparsity = a.Double("sparsity", double.NaN);
        string output = a.Required("out");
        a.RejectUnknown();
        if (double.IsNaN(sparsity)) throw new UsageException("--sparsity is required");

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
