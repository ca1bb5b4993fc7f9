using System.Globalization;
using System.Net;
using System.Net.Sockets;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Cluster;

/// <summary>
/// Where <c>generate</c> and <c>score</c> run when not in this process: <c>--stages N</c> alone starts an
/// embedded cluster of N silos for the one command; <c>--cluster HOST:PORT[,HOST:PORT]</c> uses a running
/// cluster's gateways (<c>--cluster-id</c>, default "ftpcluster"), over <c>--stages</c> silos or every
/// silo up. <c>--wire</c> picks the activation encoding between stages; <c>--tls</c> (or its files one by one) gives the
/// client's certificate for a running cluster whose silos use TLS. Read from the command line by
/// <see cref="Commands.ClusterOptionGroup"/>.
/// </summary>
internal sealed record ClusterTarget(int? Stages, IReadOnlyList<(string Host, int Port)>? Gateways, string ClusterId, WireEncoding Wire,
    TlsFiles? Tls = null)
{
    public const string DefaultClusterId = "ftpcluster";

    public bool IsEmbedded => Gateways is null;

    /// <summary>A --wire word.</summary>
    public static WireEncoding ParseWire(string word)
    {
        try
        {
            return WireEncodings.Parse(word);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"--wire expects f32, f16, bf16, int8 (a scale per 32 values) or int8-row (a scale per row), got '{word}'");
        }
    }

    /// <summary>"HOST:PORT[,HOST:PORT]"; a host is an IP address (IPv6 in brackets) or a name.</summary>
    public static IReadOnlyList<(string Host, int Port)> ParseGateways(string text)
    {
        var gateways = new List<(string, int)>();
        foreach (string item in text.Split(',', StringSplitOptions.TrimEntries))
        {
            int colon = item.LastIndexOf(':');
            string host = colon > 0 ? item[..colon].Trim('[', ']') : "";
            if (host.Length == 0
                || !int.TryParse(item[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port)
                || port is < 1 or > 65535
                || (host.Contains(':', StringComparison.Ordinal) && !IPAddress.TryParse(host, out _)))
                throw new UsageException($"--cluster expects HOST:PORT[,HOST:PORT...] (gateway endpoints), got '{item}'");
            gateways.Add((host, port));
        }
        return gateways;
    }

    /// <summary>The gateways as endpoints, host names looked up (IPv4 first).</summary>
    public static async Task<IPEndPoint[]> ResolveAsync(IReadOnlyList<(string Host, int Port)> gateways, CancellationToken cancellationToken)
    {
        var endpoints = new List<IPEndPoint>();
        foreach (var (host, port) in gateways)
        {
            if (IPAddress.TryParse(host, out var address))
            {
                endpoints.Add(new IPEndPoint(address, port));
                continue;
            }
            IPAddress[] addresses;
            try
            {
                addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
            }
            catch (SocketException e)
            {
                throw new InvalidOperationException($"--cluster: cannot resolve '{host}': {e.Message}", e);
            }
            var chosen = addresses.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault()
                ?? throw new InvalidOperationException($"--cluster: '{host}' has no address");
            endpoints.Add(new IPEndPoint(chosen, port));
        }
        return [.. endpoints];
    }
}
