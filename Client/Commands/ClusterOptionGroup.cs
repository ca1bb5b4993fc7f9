using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// CLUSTER, the options that make a <see cref="ClusterTarget"/>: --stages, --cluster, --cluster-id, --wire, and the
/// client's TLS files for a cluster that uses TLS (--tls DIR, or --tls-ca, --tls-cert, --tls-key). Defined once and added
/// to every command that can run through stages; <c>cluster up</c> takes --cluster-id and --wire one by one, and the
/// commands that only talk to a running cluster take --cluster, --cluster-id and the TLS options (<see cref="AddRunningTo"/>).
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

    public static readonly Option<string> Tls = CliOption.Text("--tls", "DIR",
        "With --cluster: the cluster's certificates (ftpcluster cluster certs makes them); the client uses DIR/ca.pem, DIR/client.pem and DIR/client.key");

    public static readonly Option<string> TlsCa = CliOption.Text("--tls-ca", "FILE", "With --cluster, instead of --tls: the cluster CA's certificate (PEM)");

    public static readonly Option<string> TlsCert = CliOption.Text("--tls-cert", "FILE",
        $"With --tls-ca: this client's certificate, PEM, or a .pfx/.p12 that holds its key too (password in {TlsFiles.PasswordVariable})");

    public static readonly Option<string> TlsKey = CliOption.Text("--tls-key", "FILE", "With a PEM --tls-cert: its private key (PEM)");

    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { Stages, Cluster, ClusterId, Wire, Tls, TlsCa, TlsCert, TlsKey }) command.Add(option);
    }

    /// <summary>The options of a command that only talks to a running cluster: --cluster, --cluster-id and the TLS options.</summary>
    public static void AddRunningTo(Command command)
    {
        foreach (var option in new Option[] { Cluster, ClusterId, Tls, TlsCa, TlsCert, TlsKey }) command.Add(option);
    }

    /// <summary>A running cluster, for the commands that only talk to one (jobs, deployments): --cluster is required.</summary>
    public static Task<CommandCluster> ConnectToRunningAsync(ParseResult parse, CancellationToken cancellation)
    {
        var gateways = parse.GetValue(Cluster) ?? throw new UsageException("--cluster HOST:PORT is required: it names a running cluster's gateways");
        var target = new ClusterTarget(null, gateways, parse.GetValue(ClusterId) ?? ClusterTarget.DefaultClusterId, WireEncoding.F32, BindTls(parse));
        return CommandCluster.OpenAsync(target, configureSilo: null, cancellation);
    }

    /// <summary>The client's TLS files the command line names; null when it names none.</summary>
    private static TlsFiles? BindTls(ParseResult parse)
    {
        try
        {
            return TlsFiles.FromSwitches(parse.GetValue(Tls), TlsFiles.ClientName, parse.GetValue(TlsCa), parse.GetValue(TlsCert), parse.GetValue(TlsKey));
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>The cluster a command runs through; null when none is given (it runs in this process).</summary>
    public static ClusterTarget? Bind(ParseResult parse)
    {
        int? stages = parse.GetValue(Stages);
        var gateways = parse.GetValue(Cluster);
        string? clusterId = parse.GetValue(ClusterId);
        var wire = parse.GetValue(Wire);
        var tls = BindTls(parse);
        if (tls is not null && gateways is null)
            throw new UsageException("--tls (and --tls-ca, --tls-cert, --tls-key) need --cluster HOST:PORT: an embedded cluster runs on loopback without TLS");
        if (stages is null && gateways is null)
        {
            if (wire is not null) throw new UsageException("--wire needs --stages N or --cluster HOST:PORT");
            if (clusterId is not null) throw new UsageException("--cluster-id needs --cluster HOST:PORT");
            return null;
        }
        if (stages is < 1) throw new UsageException($"--stages must be at least 1, got {stages}");
        if (gateways is null && clusterId is not null) throw new UsageException("--cluster-id needs --cluster HOST:PORT");
        return new ClusterTarget(stages, gateways, clusterId ?? ClusterTarget.DefaultClusterId, wire ?? WireEncoding.F32, tls);
    }
}
