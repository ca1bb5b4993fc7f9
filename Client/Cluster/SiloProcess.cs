using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Client.Cluster;

/// <summary>
/// One <c>FtpCluster.Silo</c> process: started with a command line, then waited on for its ready line
/// (or its exit), never for a fixed delay. Disposing kills it and waits until it is gone.
/// </summary>
/// <remarks>
/// The silo runs from <c>FtpCluster.Silo.dll</c> beside this assembly (the client project builds the silo
/// project and copies its output into its own, so every build output holding <c>ftpcluster.dll</c> holds the
/// silo too), through the same <c>dotnet</c> host that runs this process.
/// </remarks>
public sealed class SiloProcess : IDisposable
{
    /// <summary>A bound on start-up, not a delay: waits end as soon as the ready line or the exit arrives.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    public const string SiloAssemblyFileName = "FtpCluster.Silo.dll";

    // A silo that runs for days must not grow our memory with its log; the tail explains a failed start.
    private const int KeptOutputLines = 500;

    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly TaskCompletionSource<SiloReadyLine> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, Action<string>? onOutput,
        IReadOnlyList<string>? launcher = null)
    {
        // A launcher runs the dotnet host as its command (ip netns exec NS dotnet ...); it must replace
        // itself with that command (exec), so that this process id is the silo's and killing it kills the silo.
        bool launched = launcher is { Count: > 0 };
        var start = new ProcessStartInfo(launched ? launcher![0] : DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (launched)
        {
            foreach (var arg in launcher!.Skip(1)) start.ArgumentList.Add(arg);
            start.ArgumentList.Add(DotnetHost);
        }
        start.ArgumentList.Add(SiloAssembly);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // The silo gets exactly the options on its command line: our own FTPCLUSTER_* settings (a redis
        // connection string, say) must not reach it through the inherited environment.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith(SiloEnvironmentPrefix, StringComparison.Ordinal)).ToArray())
            start.Environment.Remove(name);
        // Nor our service name: each silo reports under its node name unless told another. (The OTLP endpoint and the
        // other OTEL_* settings do pass, so an embedded cluster's silos export where their parent does.)
        start.Environment.Remove(FtpClusterTelemetryHosting.ServiceNameVariable);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;

        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Keep(e.Data);
            onOutput?.Invoke(e.Data);
            if (SiloReadyLine.TryParse(e.Data, out var ready)) _ready.TrySetResult(ready);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Keep(StderrMark + e.Data);
            onOutput?.Invoke(e.Data);
        };
        _process.Exited += (_, _) =>
        {
            // WaitForExit() (no timeout) drains the redirected streams, so the output is complete here.
            _process.WaitForExit();
            _exited.TrySetResult(_process.ExitCode);
            _ready.TrySetException(new InvalidOperationException(
                $"silo exited with code {_process.ExitCode} before it was ready:{Environment.NewLine}{Output}"));
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private const string SiloEnvironmentPrefix = "FTPCLUSTER_";
    private const string StderrMark = "stderr: ";

    public int ProcessId => _process.Id;

    /// <summary>Completes with the exit code when the process has exited.</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>What it printed (the last <see cref="KeptOutputLines"/> lines), stderr lines marked.</summary>
    public string Output
    {
        get
        {
            lock (_output) return string.Join(Environment.NewLine, _output);
        }
    }

    /// <summary>Lines it printed on stderr (of the last <see cref="KeptOutputLines"/>).</summary>
    public IReadOnlyList<string> ErrorLines
    {
        get
        {
            lock (_output) return _output.Where(l => l.StartsWith(StderrMark, StringComparison.Ordinal)).Select(l => l[StderrMark.Length..]).ToArray();
        }
    }

    public static SiloProcess Start(FtpClusterSiloOptions options) => new(options.ToCommandLine(), null, null);

    /// <param name="onOutput">Called with every line the silo prints, stdout and stderr, as it arrives.</param>
    public static SiloProcess Start(FtpClusterSiloOptions options, Action<string> onOutput) => new(options.ToCommandLine(), null, onOutput);

    /// <param name="environment">Variables set for the silo on top of the ones it inherits.</param>
    /// <param name="onOutput">Called with every line the silo prints, stdout and stderr, as it arrives.</param>
    public static SiloProcess Start(FtpClusterSiloOptions options, IReadOnlyDictionary<string, string> environment, Action<string>? onOutput) =>
        new(options.ToCommandLine(), environment, onOutput);

    public static SiloProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) => new(args, environment, null);

    /// <summary>
    /// A silo whose dotnet host runs under <paramref name="launcher"/>, a command line that ends by
    /// executing the command appended to it in place of itself: <c>ip netns exec NS</c> runs the silo in
    /// network namespace NS.
    /// </summary>
    /// <param name="environment">Variables set for the silo on top of the ones it inherits (the launcher passes them on).</param>
    /// <param name="onOutput">Called with every line the silo prints, stdout and stderr, as it arrives.</param>
    public static SiloProcess StartUnder(IReadOnlyList<string> launcher, FtpClusterSiloOptions options,
        IReadOnlyDictionary<string, string>? environment = null, Action<string>? onOutput = null)
    {
        if (launcher.Count == 0) throw new ArgumentException("a launcher needs at least a program", nameof(launcher));
        return new(options.ToCommandLine(), environment, onOutput, launcher);
    }

    /// <summary>The silo's ready line; throws with its output if it exits first or takes longer than <see cref="StartTimeout"/>.</summary>
    public async Task<SiloReadyLine> WaitReadyAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _ready.Task.WaitAsync(StartTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"silo printed no ready line within {StartTimeout.TotalSeconds} s:{Environment.NewLine}{Output}");
        }
    }

    /// <summary>The exit code; throws if it is still running after <see cref="StartTimeout"/>.</summary>
    public async Task<int> WaitExitAsync()
    {
        try
        {
            return await _exited.Task.WaitAsync(StartTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"silo still runs after {StartTimeout.TotalSeconds} s:{Environment.NewLine}{Output}");
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // It never started, or it is already gone.
        }
        _process.Dispose();
    }

    /// <summary>Loopback ports nothing listens on now: held open together so they are distinct, then released.</summary>
    public static int[] FreeLoopbackPorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        try
        {
            foreach (var listener in listeners) listener.Start();
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners) listener.Stop();
        }
    }

    private void Keep(string line)
    {
        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > KeptOutputLines) _output.Dequeue();
        }
    }

    /// <summary>
    /// The dotnet host: this process itself when it is one (<c>dotnet ftpcluster.dll</c>, a test host),
    /// else the one of the runtime running us (the <c>ftpcluster</c> app host), three folders above the
    /// runtime's own (<c>DOTNET_ROOT/shared/Microsoft.NETCore.App/VERSION</c>).
    /// </summary>
    private static string DotnetHost => FindDotnetHost();

    private static string SiloAssembly => FindSiloAssembly();

    private static string FindDotnetHost()
    {
        string hostName = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == hostName) return self;
        string besideRuntime = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", hostName));
        return File.Exists(besideRuntime) ? besideRuntime : hostName;
    }

    private static string FindSiloAssembly()
    {
        string path = Path.Combine(Path.GetDirectoryName(typeof(SiloProcess).Assembly.Location) ?? AppContext.BaseDirectory, SiloAssemblyFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"the silo is not beside the command line at {path} (build Client/FtpCluster.Client.csproj, which builds the silo with it)", path);
        return path;
    }
}
