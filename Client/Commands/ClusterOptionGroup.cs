using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// CLUSTER, the options that make a <see cref="ClusterTarget"/>: --stages, --cluster, --cluster-id, --wire.
/// Defined once and added to every command that can run through stages; <c>cluster up</c> takes
/// --cluster-id and --wire one by one.
/// </summary>
internal static class ClusterOptionGroup
{
    public static readonly Option<int?> Stages = CliOption.OptionalInt("--stages", "N",
        "Alone: an embedded cluster of N silo processes on loopback for this command, stopped afterwards (also on error and Ctrl+C); " +
        "with --cluster: how many of its silos to use (default all)");

    public static readonly Option<IReadOnlyList<(string Host, int Port)>> Cluster = CliOption.Parsed("--cluster", "HOST:PORT[,HOST:PORT]",
        "A running cluster's gateways (cluster up prints them); the model path must be readable by its silos",
        ClusterTarget.ParseGateways, []);

    public static readonly Option<string> ClusterId = CliOption.Text("--cluster-id", "ID",
        $"The cluster's id, as its silos were started with (default {ClusterTarget.DefaultClusterId})");

    public static readonly Option<WireEncoding?> Wire = CliOption.Parsed<WireEncoding?>("--wire", "f32|f16|bf16|int8|int8-row",
        "Activation encoding between stages (default f32, bit-exact; int8 has a scale per 32 values, int8-row one per row)",
        word => ClusterTarget.ParseWire(word), WireEncodings.All.Select(e => e.CliWord()));

    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { Stages, Cluster, ClusterId, Wire }) command.Add(option);
    }

    /// <summary>A running cluster, for the commands that only talk to one (jobs, deployments): --cluster is required.</summary>
    public static Task<CommandCluster> ConnectToRunningAsync(ParseResult parse, CancellationToken cancellation)
    {
        var gateways = parse.GetValue(Cluster) ?? throw new UsageException("--cluster HOST:PORT is required: it names a running cluster's gateways");
        var target = new ClusterTarget(null, gateways, parse.GetValue(ClusterId) ?? ClusterTarget.DefaultClusterId, WireEncoding.F32);
        return CommandCluster.OpenAsync(target, configureSilo: null, cancellation);
    }

    /// <summary>The cluster a command runs through; null when none is given (it runs in this process).</summary>
    public static ClusterTarget? Bind(ParseResult parse)
    {
        int? stages = parse.GetValue(Stages);
        var gateways = parse.GetValue(Cluster);
        string? clusterId = parse.GetValue(ClusterId);
        var wire = parse.GetValue(Wire);
        if (stages is null && gateways is null)
        {
            if (wire is not null) throw new UsageException("--wire needs --stages N or --cluster HOST:PORT");
            if (clusterId is not null) throw new UsageException("--cluster-id needs --cluster HOST:PORT");
            return null;
        }
        if (stages is < 1) throw new UsageException($"--stages must be at least 1, got {stages}");
        if (gateways is null && clusterId is not null) throw new UsageException("--cluster-id needs --cluster HOST:PORT");
        return new ClusterTarget(stages, gateways, clusterId ?? ClusterTarget.DefaultClusterId, wire ?? WireEncoding.F32);
    }
}
