using System.Net;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Client.Cluster;

/// <summary>One silo of an <see cref="EmbeddedCluster"/>: its options, its process and what it said when ready.</summary>
public sealed record EmbeddedSilo(FtpClusterSiloOptions Options, SiloProcess Process, SiloReadyLine Ready);

/// <summary>
/// A cluster of <c>FtpCluster.Silo</c> processes that this process starts and owns, on loopback
/// (<see cref="LocalSiloOptions"/>) or wherever their options and launcher put them: localhost
/// clustering with the first silo as the primary, no external service. Disposing kills every silo; each
/// silo also watches this process (<c>--parent-pid</c>), so none outlives it even when it is killed.
/// </summary>
public sealed class EmbeddedCluster : IDisposable
{
    private readonly List<SiloProcess> _processes;

    private EmbeddedCluster(List<SiloProcess> processes, IReadOnlyList<EmbeddedSilo> silos)
    {
        _processes = processes;
        Silos = silos;
    }

    public IReadOnlyList<EmbeddedSilo> Silos { get; }

    /// <summary>Every silo's gateway, what a client (or <c>--cluster</c>) connects through.</summary>
    public IReadOnlyList<IPEndPoint> Gateways => Silos.Select(s => s.Ready.Gateway).ToArray();

    public string ClusterId => Silos[0].Options.ClusterId;

    public string ServiceId => Silos[0].Options.ServiceId;

    /// <summary>Completes with the first silo that exits (none should while the cluster is up).</summary>
    public async Task<EmbeddedSilo> FirstExitAsync()
    {
        var exited = await Task.WhenAny(Silos.Select(s => s.Process.Exited));
        return Silos.First(s => s.Process.Exited == exited);
    }

    /// <summary>Node names a, b, …, z, aa, ab, …: short, ordered as the silos are, valid in grain keys.</summary>
    public static string NodeName(int index)
    {
        string name = "";
        for (int i = index + 1; i > 0; i = (i - 1) / 26)
            name = (char)('a' + (i - 1) % 26) + name;
        return name;
    }

    /// <summary>
    /// Options for <paramref name="count"/> loopback silos of one cluster, watched by this process: silo
    /// <c>i</c> gets silo port <c>basePort + 2i</c> and gateway port <c>basePort + 2i + 1</c>, or free ports
    /// when <paramref name="basePort"/> is null. Callers may adjust them before <see cref="StartAsync"/>.
    /// </summary>
    public static FtpClusterSiloOptions[] LocalSiloOptions(int count, string clusterId, int? basePort = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        int[] ports = basePort is { } first
            ? Enumerable.Range(first, 2 * count).ToArray()
            : SiloProcess.FreeLoopbackPorts(2 * count);
        return Enumerable.Range(0, count).Select(i => new FtpClusterSiloOptions
        {
            NodeName = NodeName(i),
            SiloPort = ports[2 * i],
            GatewayPort = ports[2 * i + 1],
            AdvertisedAddress = IPAddress.Loopback.ToString(),
            Clustering = FtpClusterSiloOptions.LocalhostClustering,
            PrimarySiloEndpoint = i == 0 ? null : $"{IPAddress.Loopback}:{ports[0]}",
            ClusterId = clusterId,
            ParentProcessId = Environment.ProcessId,
        }).ToArray();
    }

    /// <summary>
    /// Model roots (<see cref="FtpClusterSiloOptions.ModelRoots"/>) that let silos load the given files and folders and
    /// what lies beside them: a folder roots at itself, a file at the folder it is in. Nulls are skipped.
    /// </summary>
    public static List<string> ModelRootsFor(params IEnumerable<string?> paths) =>
        [.. paths.OfType<string>().Select(Path.GetFullPath)
            .Select(path => Directory.Exists(path) ? path : Path.GetDirectoryName(path) ?? path)
            .Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// Settles the devices of silos started together on one machine: those asked for <c>cuda</c> take one GPU each
    /// (<see cref="ComputeDevices.OfLocalSilo"/>), and every silo on a CUDA device takes its memory budget from that
    /// device's free memory, not from the host's. Two silos on one CUDA device are refused: each would count the
    /// device's whole free memory as its own.
    /// </summary>
    /// <exception cref="ArgumentException">Two silos are given the same CUDA device.</exception>
    public static void PlaceOnDevices(IReadOnlyList<FtpClusterSiloOptions> silos)
    {
        for (int i = 0; i < silos.Count; i++)
        {
            silos[i].Device = ComputeDevices.OfLocalSilo(silos[i].Device, i);
            if (ComputeDevices.CudaIndex(silos[i].Device) is not null) silos[i].MemoryBudgetFromDevice = true;
        }
        if (silos.Where(s => s.MemoryBudgetFromDevice).GroupBy(s => s.Device).FirstOrDefault(g => g.Count() > 1) is { } shared)
            throw new ArgumentException($"silos {string.Join(", ", shared.Select(s => s.NodeName))} are all on {shared.Key}, and each "
                + "would take its whole free memory as its budget: give them cuda, which puts each on a GPU of its own");
    }

    /// <summary>
    /// Starts the silos (the first is the primary the others join through, so it starts first; the rest
    /// start together) and returns once every one has printed its ready line. Kills what it started
    /// when any silo fails to start or <paramref name="cancellationToken"/> fires. Silos asked for <c>cuda</c> take one
    /// GPU each (<see cref="PlaceOnDevices"/>), their options saying which.
    /// </summary>
    /// <param name="onOutput">Called with (node, line) for every line a silo prints.</param>
    /// <param name="launcher">
    /// For each silo, a command its process runs under (see <see cref="SiloProcess.StartUnder"/>), such as
    /// <c>ip netns exec NS</c>; null or an empty one: the dotnet host runs it directly.
    /// </param>
    /// <param name="environment">
    /// Variables every silo gets on top of what it inherits and <see cref="SharedMachineEnvironment"/> (OpenTelemetry's
    /// <c>OTEL_*</c> settings, say); they win over both.
    /// </param>
    public static async Task<EmbeddedCluster> StartAsync(
        IReadOnlyList<FtpClusterSiloOptions> silos, Action<string, string>? onOutput = null,
        Func<FtpClusterSiloOptions, IReadOnlyList<string>>? launcher = null, IReadOnlyDictionary<string, string>? environment = null,
        CancellationToken cancellationToken = default)
    {
        var siloEnvironment = new Dictionary<string, string>(SharedMachineEnvironment());
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) siloEnvironment[name] = value;
        if (silos.Count == 0) throw new ArgumentException("an embedded cluster needs at least one silo", nameof(silos));
        PlaceOnDevices(silos);
        foreach (var options in silos) options.Validate();
        var processes = new List<SiloProcess>();
        try
        {
            SiloProcess Start(FtpClusterSiloOptions options)
            {
                Action<string>? output = onOutput is null ? null : line => onOutput(options.NodeName, line);
                var process = launcher?.Invoke(options) is [_, ..] command
                    ? SiloProcess.StartUnder(command, options, siloEnvironment, output)
                    : SiloProcess.Start(options, siloEnvironment, output);
                processes.Add(process);
                return process;
            }
            var readies = new List<SiloReadyLine> { await Start(silos[0]).WaitReadyAsync(cancellationToken) };
            var others = silos.Skip(1).Select(Start).ToArray();
            readies.AddRange(await Task.WhenAll(others.Select(p => p.WaitReadyAsync(cancellationToken))));
            return new EmbeddedCluster(processes, silos.Select((options, i) => new EmbeddedSilo(options, processes[i], readies[i])).ToArray());
        }
        catch
        {
            foreach (var process in processes) process.Dispose();
            throw;
        }
    }

    /// <summary>The .NET setting for how long an idle thread-pool thread spins before it sleeps.</summary>
    public const string ThreadPoolSpinLimitVariable = "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit";

    /// <summary>
    /// Settings for silos that share this machine's cores: no thread-pool spinning. A .NET thread-pool
    /// thread that runs out of work spins a while before it sleeps; with every silo on the same few cores,
    /// that spinning takes the cores the silo with work needs (activation transport between two embedded
    /// silos on two cores: faster in 28 of 40 paired runs, medians 10-40% higher; docs/benchmarks.md). A
    /// value this process's own environment gives is kept.
    /// </summary>
    public static IReadOnlyDictionary<string, string> SharedMachineEnvironment() =>
        Environment.GetEnvironmentVariable(ThreadPoolSpinLimitVariable) is null
            ? new Dictionary<string, string> { [ThreadPoolSpinLimitVariable] = "0" }
            : new Dictionary<string, string>();

    public void Dispose()
    {
        // Nothing a silo holds outlives it (weights are re-read from the model file, caches are per
        // request), so there is nothing for a graceful stop to save: kill them all at once.
        Parallel.ForEach(_processes, process => process.Dispose());
    }
}
