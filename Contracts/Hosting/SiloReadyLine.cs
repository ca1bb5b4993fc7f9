using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The line a silo process prints on stdout once it has joined its cluster and accepts clients, so a
/// parent process (the embedded cluster, tests) waits for exactly that instead of guessing.
/// </summary>
/// <example><c>ftpcluster-silo ready: node=a silo=127.0.0.1:11111 gateway=127.0.0.1:30000 pid=4242</c></example>
public sealed partial record SiloReadyLine(string NodeName, IPEndPoint Silo, IPEndPoint Gateway, int ProcessId)
{
    public const string Prefix = "ftpcluster-silo ready:";

    public override string ToString() =>
        $"{Prefix} node={NodeName} silo={Silo} gateway={Gateway} pid={ProcessId.ToString(CultureInfo.InvariantCulture)}";

    public static bool TryParse(string? line, out SiloReadyLine ready)
    {
        ready = null!;
        if (line is null) return false;
        var match = Pattern().Match(line);
        if (!match.Success
            || !IPEndPoint.TryParse(match.Groups["silo"].Value, out var silo)
            || !IPEndPoint.TryParse(match.Groups["gateway"].Value, out var gateway)
            || !int.TryParse(match.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            return false;
        ready = new SiloReadyLine(match.Groups["node"].Value, silo, gateway, pid);
        return true;
    }

    [GeneratedRegex(@"^ftpcluster-silo ready: node=(?<node>\S+) silo=(?<silo>\S+) gateway=(?<gateway>\S+) pid=(?<pid>\d+)$")]
    private static partial Regex Pattern();
}
