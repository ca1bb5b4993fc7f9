using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace FtpCluster.Cluster.Tests;

/// <summary>The kernel's counters of one network interface: what it sent (tx) and received (rx).</summary>
public readonly record struct InterfaceCounters(long TxBytes, long TxPackets, long RxBytes, long RxPackets)
{
    public static InterfaceCounters operator -(InterfaceCounters after, InterfaceCounters before) =>
        new(after.TxBytes - before.TxBytes, after.TxPackets - before.TxPackets,
            after.RxBytes - before.RxBytes, after.RxPackets - before.RxPackets);
}

/// <summary>One node of a <see cref="NamespacedNetwork"/>: its network namespace, the address it has there, and the interface that carries it.</summary>
public sealed record NetworkNode(string Name, string Namespace, IPAddress Address)
{
    /// <summary>The node's end of its veth pair, inside its namespace.</summary>
    public const string Interface = "eth0";

    /// <summary>The command line that runs a program inside this node's namespace (it execs the program, keeping the process id).</summary>
    public IReadOnlyList<string> Launcher => [IpCommand.Executable ?? "ip", "netns", "exec", Namespace];
}

/// <summary>
/// A private IPv4 network of network namespaces, one per node, so that every byte a node sends or receives
/// crosses one veth interface whose kernel counters say how many there were. A bridge in a namespace of
/// its own joins the nodes' veth pairs and one more pair to this (the root) namespace, where the test and
/// its Orleans client live:
/// <code>
///   root namespace: ftpnPID-N (10.231.S.1) ─┐
///   PREFIX-sw:      host ── br0 ── port-0 ── eth0 (10.231.S.10) in PREFIX-a
///                                 ── port-1 ── eth0 (10.231.S.11) in PREFIX-b ...
/// </code>
/// The bridge lives outside the root namespace so that the root namespace's firewall (with br_netfilter
/// loaded, bridged frames pass through iptables, whose FORWARD policy a container runtime may have set
/// to DROP) has no say over traffic between nodes. Names carry this process's id and a sequence number,
/// so concurrent runs and several networks in one run never meet; <see cref="DeleteStale"/> removes
/// what a killed run left behind. Needs Linux, root and iproute2's <c>ip</c>.
/// </summary>
public sealed partial class NamespacedNetwork : IDisposable
{
    /// <summary>Every namespace and root-namespace interface this class creates starts with this.</summary>
    public const string NamePrefix = "ftpn";

    private const string SubnetPrefix = "10.231";
    private const string Bridge = "br0";
    private const string BridgeHostPort = "host";
    private const int FirstNodeHost = 10;

    private static int s_networksCreated;
    private static readonly Lock s_subnetChoice = new();

    private readonly List<string> _namespaces = [];
    private string? _hostInterface;
    private readonly List<NetworkNode> _nodes = [];

    private NamespacedNetwork(string name) => Name = name;

    /// <summary>PREFIX: ftpn + this process's id + '-' + a sequence number; the root-namespace interface's name too.</summary>
    public string Name { get; }

    /// <summary>This (root) namespace's address on the network: what the nodes see the test's client connect from.</summary>
    public IPAddress HostAddress { get; private set; } = IPAddress.None;

    public IReadOnlyList<NetworkNode> Nodes => _nodes;

    public NetworkNode Node(string name) => _nodes.Single(n => n.Name == name);

    /// <summary>Builds the network for <paramref name="nodeNames"/>; on any failure removes what it made and throws with ip's message.</summary>
    public static NamespacedNetwork Create(IReadOnlyList<string> nodeNames)
    {
        DeleteStale();
        string name = $"{NamePrefix}{Environment.ProcessId}-{Interlocked.Increment(ref s_networksCreated)}";
        var network = new NamespacedNetwork(name);
        try
        {
            network.Build(nodeNames);
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Build(IReadOnlyList<string> nodeNames)
    {
        string switchNamespace = AddNamespace("sw");
        IpCommand.Run("-n", switchNamespace, "link", "add", Bridge, "type", "bridge");
        IpCommand.Run("-n", switchNamespace, "link", "set", Bridge, "addrgenmode", "none", "up");

        // The root namespace's leg: the test's client reaches the nodes through it.
        IpCommand.Run("link", "add", Name, "type", "veth", "peer", "name", BridgeHostPort, "netns", switchNamespace);
        _hostInterface = Name;
        string subnet;
        // Two networks built at once in this process would otherwise both find the same subnet free, and the
        // root namespace would route one network's traffic into the other.
        lock (s_subnetChoice)
        {
            subnet = FreeSubnet();
            HostAddress = IPAddress.Parse($"{subnet}.1");
            IpCommand.Run("addr", "add", $"{HostAddress}/24", "dev", Name);
        }
        IpCommand.Run("link", "set", Name, "addrgenmode", "none", "up");
        IpCommand.Run("-n", switchNamespace, "link", "set", BridgeHostPort, "master", Bridge, "addrgenmode", "none", "up");

        for (int i = 0; i < nodeNames.Count; i++)
        {
            string node = AddNamespace(nodeNames[i]);
            string port = $"port-{i}";
            var address = IPAddress.Parse($"{subnet}.{FirstNodeHost + i}");
            IpCommand.Run("-n", node, "link", "set", "lo", "up");
            IpCommand.Run("-n", switchNamespace, "link", "add", port, "type", "veth", "peer", "name", NetworkNode.Interface, "netns", node);
            IpCommand.Run("-n", switchNamespace, "link", "set", port, "master", Bridge, "addrgenmode", "none", "up");
            IpCommand.Run("-n", node, "addr", "add", $"{address}/24", "dev", NetworkNode.Interface);
            // No IPv6 link-local address: its router solicitations and neighbour discovery would be
            // traffic of no silo's making on the interface we count.
            IpCommand.Run("-n", node, "link", "set", NetworkNode.Interface, "addrgenmode", "none", "up");
            _nodes.Add(new NetworkNode(nodeNames[i], node, address));
        }
    }

    private string AddNamespace(string suffix)
    {
        string name = $"{Name}-{suffix}";
        IpCommand.Run("netns", "add", name);
        _namespaces.Add(name);
        return name;
    }

    /// <summary>The kernel's counters of <paramref name="node"/>'s interface: tx is what the node sent.</summary>
    public InterfaceCounters ReadCounters(string node)
    {
        string json = IpCommand.Run("-n", Node(node).Namespace, "-json", "-statistics", "link", "show", "dev", NetworkNode.Interface);
        using var document = JsonDocument.Parse(json);
        var stats = document.RootElement[0].GetProperty("stats64");
        var tx = stats.GetProperty("tx");
        var rx = stats.GetProperty("rx");
        return new InterfaceCounters(tx.GetProperty("bytes").GetInt64(), tx.GetProperty("packets").GetInt64(),
            rx.GetProperty("bytes").GetInt64(), rx.GetProperty("packets").GetInt64());
    }

    /// <summary>
    /// What the kernel says of the network: the root leg's routes and every namespace's links, addresses, routes and
    /// neighbours. For a failure's message, where a partition that did not heal must be told from a silo that did not
    /// reconnect.
    /// </summary>
    public string Describe()
    {
        var text = new System.Text.StringBuilder();
        void Add(string title, params string[] args)
        {
            text.Append("$ ip ").AppendJoin(' ', args).Append("  # ").AppendLine(title);
            try
            {
                text.AppendLine(IpCommand.Run(args).TrimEnd());
            }
            catch (InvalidOperationException e)
            {
                text.AppendLine(e.Message);
            }
        }
        Add("root routes to the network", "route", "show", "dev", _hostInterface ?? "lo");
        foreach (string space in _namespaces)
        {
            Add(space, "-n", space, "-br", "link");
            Add(space, "-n", space, "-br", "addr");
            Add(space, "-n", space, "route");
            Add(space, "-n", space, "neigh");
        }
        return text.ToString();
    }

    /// <summary>Every node's counters, by node name.</summary>
    public IReadOnlyDictionary<string, InterfaceCounters> ReadCounters() =>
        _nodes.ToDictionary(n => n.Name, n => ReadCounters(n.Name));

    /// <summary>
    /// Removes the namespaces (with the veth ends inside them) and the root-namespace interface. The
    /// processes running in a namespace must be gone first, or it lingers, unnamed, until they are.
    /// </summary>
    public void Dispose()
    {
        // Deleting the root-namespace end takes its peer with it at once; a deleted namespace's
        // interfaces go later, when the kernel gets round to destroying it.
        if (_hostInterface is not null) IpCommand.TryRun("link", "del", _hostInterface);
        _hostInterface = null;
        foreach (string name in Enumerable.Reverse(_namespaces))
            IpCommand.TryRun("netns", "del", name);
        _namespaces.Clear();
    }

    /// <summary>
    /// Deletes namespaces and root-namespace interfaces named by a process that no longer runs (a test
    /// run killed before it could clean up). Those of live processes, concurrent runs included, stay.
    /// </summary>
    public static void DeleteStale()
    {
        string namespaces = IpCommand.Run("netns", "list");
        foreach (string line in namespaces.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string name = line.Split(' ')[0];
            if (IsStale(name)) IpCommand.TryRun("netns", "del", name);
        }
        using var links = JsonDocument.Parse(IpCommand.Run("-json", "link", "show"));
        foreach (var link in links.RootElement.EnumerateArray())
        {
            string name = link.GetProperty("ifname").GetString() ?? "";
            if (IsStale(name)) IpCommand.TryRun("link", "del", name);
        }
    }

    private static bool IsStale(string name)
    {
        var match = OwnName().Match(name);
        return match.Success && int.TryParse(match.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            && !Directory.Exists($"/proc/{pid}");
    }

    /// <summary>A /24 under 10.231 that no interface of this namespace has an address in, starting from one this process id picks.</summary>
    private static string FreeSubnet()
    {
        string used = IpCommand.Run("-4", "-oneline", "addr", "show");
        for (int i = 0; i < 254; i++)
        {
            string subnet = $"{SubnetPrefix}.{1 + (Environment.ProcessId + i) % 254}";
            if (!used.Contains($" {subnet}.", StringComparison.Ordinal)) return subnet;
        }
        throw new InvalidOperationException($"every {SubnetPrefix}.x.0/24 subnet is in use");
    }

    [GeneratedRegex($"^{NamePrefix}(?<pid>[0-9]+)-[0-9]+(-.*)?$")]
    private static partial Regex OwnName();
}

/// <summary>iproute2's <c>ip</c>, run to completion.</summary>
public static class IpCommand
{
    /// <summary>The ip program, or null when there is none (it lives in sbin, which a non-root PATH may lack).</summary>
    public static string? Executable { get; } =
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(dir => Path.Combine(dir, "ip"))
            .FirstOrDefault(File.Exists);

    /// <summary>Its standard output; throws with the command and its standard error when it fails.</summary>
    public static string Run(params string[] args)
    {
        var (exitCode, output, error) = Execute(args);
        if (exitCode != 0)
            throw new InvalidOperationException($"ip {string.Join(' ', args)} failed with exit code {exitCode}: {error.Trim()}");
        return output;
    }

    /// <summary>For clean-up: whether it succeeded, never an exception.</summary>
    public static bool TryRun(params string[] args)
    {
        try
        {
            return Execute(args).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static (int ExitCode, string Output, string Error) Execute(string[] args)
    {
        var start = new ProcessStartInfo(Executable ?? throw new InvalidOperationException("iproute2's ip is not installed"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {start.FileName}");
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }
}

/// <summary>
/// A fact that is skipped, saying why, where <see cref="NamespacedNetwork"/> cannot be built: not Linux,
/// not root, no <c>ip</c>, or a kernel or container that refuses network namespaces.
/// </summary>
public sealed class NetworkNamespacesFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(Check);

    public NetworkNamespacesFactAttribute()
    {
        if (WhyNot.Value is { } reason) Skip = reason;
    }

    private static string? Check()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces are Linux only; the namespaced cluster tests need them";
        if (!Environment.IsPrivilegedProcess)
            return "creating network namespaces and veth pairs needs root (CI runs as root); the namespaced cluster tests are not run";
        if (IpCommand.Executable is null)
            return "iproute2's ip is not installed (Debian: apt-get install -y iproute2); the namespaced cluster tests are not run";
        // Root in a container without CAP_NET_ADMIN/CAP_SYS_ADMIN is refused here: say so rather than fail.
        string probe = $"{NamespacedNetwork.NamePrefix}{Environment.ProcessId}-0-probe";
        try
        {
            IpCommand.Run("netns", "add", probe);
        }
        catch (InvalidOperationException e)
        {
            return $"this machine refuses to create a network namespace ({e.Message}); the namespaced cluster tests are not run";
        }
        IpCommand.TryRun("netns", "del", probe);
        return null;
    }
}
