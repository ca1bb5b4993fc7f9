using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Grains.Hosting.Tls;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster cluster certs</c>: a new cluster CA and the certificates it issues, one per node and one for clients, in
/// the folder that silos, <c>cluster up</c> and the commands that take <c>--cluster</c> read with <c>--tls DIR</c>.
/// </summary>
internal static class ClusterCertsCommand
{
    /// <summary>How long node and client certificates are valid when --days is not given.</summary>
    public const int DefaultDays = 365;

    private static readonly Option<string> Out = CliOption.Text("--out", "DIR", "The folder to write into (required; made when missing)");

    private static readonly Option<string> Nodes = CliOption.Text("--nodes", "A,B,C",
        "The node names to issue certificates for, as each silo's --node-name (default: this machine's name, the silo's default)");

    private static readonly Option<int?> Days = CliOption.OptionalInt("--days", "N",
        $"Node and client certificates are valid for N days (default {DefaultDays}); the CA for ten years, or N days if longer");

    private static readonly Option<bool> Force = CliOption.Flag("--force", "Replace certificates and keys the folder already holds");

    private static readonly Option<string> Authority = CliOption.Text("--ca", "DIR",
        "Issue from the CA in DIR (ca.pem, ca.key) instead of making a new one: certificates for nodes added later, or renewed ones");

    public static Command Create()
    {
        var certs = new Command("certs", """
            Makes a cluster CA (ca.pem, ca.key), a certificate per node (NODE.pem, NODE.key) and one for clients (client.pem,
            client.key): ECDSA P-256, keys readable by their owner only. Silos take the folder with --tls DIR (each uses its
            node's files), and so do cluster up and every command that takes --cluster (they use client.pem). Keep ca.key off
            the silos: it issues certificates.
              cluster certs --out DIR [--nodes a,b,c] [--days N] [--ca DIR] [--force]
            """) { Out, Nodes, Days, Authority, Force };
        certs.SetAction(Run);
        return certs;
    }

    private static int Run(ParseResult parse)
    {
        string folder = parse.GetValue(Out) ?? throw new UsageException("--out DIR is required: the folder to write the certificates into");
        var nodes = parse.GetValue(Nodes) is { } list
            ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : [Environment.MachineName];
        int days = parse.GetValue(Days) ?? DefaultDays;
        if (days < 1) throw new UsageException($"--days must be at least 1, got {days}");
        try
        {
            ClusterCertificateFolder.CheckNodeNames(nodes);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--nodes: {e.Message}");
        }
        using var authority = parse.GetValue(Authority) is { } authorityFolder ? ClusterCertificateFolder.ReadAuthority(authorityFolder) : null;
        var written = ClusterCertificateFolder.Write(folder, nodes, TimeSpan.FromDays(days), parse.GetValue(Force), authority);
        string issuer = authority is null ? "a new cluster CA" : $"the CA '{authority.Subject}'";
        Console.WriteLine($"certificates for {string.Join(", ", nodes)} and clients, valid {days} days, issued by {issuer}, in {Path.GetFullPath(folder)}:");
        foreach (string path in written) Console.WriteLine($"  {Path.GetFileName(path)}");
        Console.WriteLine($"use: FtpCluster.Silo --node-name {nodes[0]} --tls {folder} ...; ftpcluster ... --cluster HOST:PORT --tls {folder}");
        return 0;
    }
}
