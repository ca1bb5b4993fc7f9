namespace FtpCluster.Cluster.Tests.Chaos;

/// <summary>What a chaos scenario needs of the machine beyond redis-server and the shared test models.</summary>
public enum ChaosNeeds
{
    /// <summary>Runs in network namespaces where the machine allows them, on loopback where not.</summary>
    Nothing,

    /// <summary>Cuts a silo's link: the silos must run in network namespaces of their own.</summary>
    NetworkNamespaces,

    /// <summary>Shapes a silo's link with <c>tc netem</c>: namespaces, and a kernel with the netem qdisc.</summary>
    Netem,
}

/// <summary>A chaos scenario, skipped with the reason where the machine lacks what it needs.</summary>
public sealed class ChaosFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> NetemMissing = new(ProbeNetem);

    public ChaosFactAttribute(ChaosNeeds needs = ChaosNeeds.Nothing)
    {
        Skip = new RedisServerAndSharedModelsFactAttribute().Skip ?? needs switch
        {
            ChaosNeeds.NetworkNamespaces => NamespacesMissing,
            ChaosNeeds.Netem => NamespacesMissing ?? NetemMissing.Value,
            _ => null,
        };
    }

    /// <summary>Whether the silos can run in network namespaces of their own here.</summary>
    public static bool NamespacesAvailable => NamespacesMissing is null;

    private static string? NamespacesMissing => new NetworkNamespacesFactAttribute().Skip;

    /// <summary>Adds a netem qdisc to a veth end in a throw-away namespace: the kernel says whether it has netem.</summary>
    private static string? ProbeNetem()
    {
        string probe = $"{NamespacedNetwork.NamePrefix}{Environment.ProcessId}-0-netem";
        try
        {
            IpCommand.Run("netns", "add", probe);
            IpCommand.Run("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1");
            var (code, error) = TrafficControl.Run("-n", probe, "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms");
            return code == 0 ? null
                : $"tc netem is not available here ({error.Trim()}: the kernel lacks the sch_netem module); the latency and loss scenario is not run";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"tc (iproute2) cannot be run ({e.Message}); the latency and loss scenario is not run";
        }
        finally
        {
            IpCommand.TryRun("netns", "del", probe);
        }
    }
}

/// <summary>iproute2's <c>tc</c>, run to completion.</summary>
public static class TrafficControl
{
    public static (int ExitCode, string Error) Run(params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("tc") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        // tc lives in sbin, which a non-root PATH may lack.
        if (File.Exists("/usr/sbin/tc")) start.FileName = "/usr/sbin/tc";
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("cannot start tc");
        var output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        _ = output.Result;
        return (process.ExitCode, error);
    }

    /// <summary>Throws with tc's message when it fails.</summary>
    public static void Check(params string[] args)
    {
        var (code, error) = Run(args);
        if (code != 0) throw new InvalidOperationException($"tc {string.Join(' ', args)} failed with exit code {code}: {error.Trim()}");
    }
}
