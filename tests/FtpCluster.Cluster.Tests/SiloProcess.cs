using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// One <c>FtpCluster.Silo</c> process started the way a parent process starts it: arguments, then wait
/// for its ready line (or its exit), never a fixed delay. Disposing kills it.
/// </summary>
public sealed class SiloProcess : IDisposable
{
    /// <summary>A bound on start-up, not a delay: waits end as soon as the ready line or the exit arrives.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly TaskCompletionSource<SiloReadyLine> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(SiloAssembly);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // The test runner's own FTPCLUSTER_* settings must not leak into the silos under test.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith(SiloEnvironmentPrefix, StringComparison.Ordinal)).ToArray())
            start.Environment.Remove(name);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;

        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            _output.Enqueue(e.Data);
            if (SiloReadyLine.TryParse(e.Data, out var ready)) _ready.TrySetResult(ready);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) _output.Enqueue("stderr: " + e.Data);
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

    public int ProcessId => _process.Id;

    /// <summary>Everything it printed so far, stderr lines marked.</summary>
    public string Output => string.Join(Environment.NewLine, _output);

    /// <summary>Lines it printed on stderr.</summary>
    public IReadOnlyList<string> ErrorLines => _output.Where(l => l.StartsWith("stderr: ", StringComparison.Ordinal)).Select(l => l[8..]).ToArray();

    public static SiloProcess Start(FtpClusterSiloOptions options) => new(options.ToCommandLine(), null);

    public static SiloProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) => new(args, environment);

    /// <summary>The silo's ready line; throws with its output if it exits first or takes longer than <see cref="StartTimeout"/>.</summary>
    public async Task<SiloReadyLine> WaitReadyAsync()
    {
        try
        {
            return await _ready.Task.WaitAsync(StartTimeout);
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

    private static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    private static string SiloAssembly { get; } = FindSiloAssembly();

    private static string FindSiloAssembly()
    {
        string path = typeof(SiloProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "SiloAssembly").Value!;
        if (!File.Exists(path))
            throw new FileNotFoundException($"the silo is not built at {path} (build Silo/FtpCluster.Silo.csproj in the same configuration)", path);
        return path;
    }
}
