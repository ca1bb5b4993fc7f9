namespace FtpCluster.Grains.Hosting;

/// <summary>What the host processor is, for start-up logs and silo info.</summary>
public static class HostCpu
{
    public static string Describe()
    {
        string model = ReadModelName() ?? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
        return $"{model}, {Environment.ProcessorCount} logical cores";
    }

    private static string? ReadModelName()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return null;
        foreach (var line in File.ReadLines(cpuinfo))
            if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
                return line[(colon + 1)..].Trim();
        return null;
    }
}
