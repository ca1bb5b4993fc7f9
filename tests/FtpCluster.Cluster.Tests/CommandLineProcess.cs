using System.Diagnostics;
using System.Text;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// <c>dotnet ftpcluster.dll ...</c> from this test's output folder (the client project is referenced, so its
/// build output, silo included, is here): the command line as a user runs it, as a separate process.
/// </summary>
public sealed class CommandLineProcess : IDisposable
{
    /// <summary>A bound on one command, not a delay: waits end when the process exits or prints what is awaited.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _awaited = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private CommandLineProcess(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ftpcluster.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stdout)
            {
                _stdout.AppendLine(e.Data);
                foreach (var (match, found) in _awaited)
                    if (match(e.Data)) found.TrySetResult(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.AppendLine(e.Data);
        };
        _process.Exited += (_, _) =>
        {
            _process.WaitForExit();
            _exited.TrySetResult();
            lock (_stdout)
            {
                foreach (var (_, found) in _awaited)
                    found.TrySetException(new InvalidOperationException($"ftpcluster exited with code {_process.ExitCode} first:{Environment.NewLine}{Stderr}"));
            }
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int ProcessId => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    public static CommandLineProcess Start(params string[] args) => new(args);

    /// <summary>Runs a command to its end.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var command = Start(args);
        int code = await command.WaitExitAsync();
        return (code, command.Stdout, command.Stderr);
    }

    /// <summary>The first stdout line (already printed or still to come) that <paramref name="match"/> accepts.</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_stdout)
        {
            var printed = _stdout.ToString().Split(Environment.NewLine).FirstOrDefault(match);
            if (printed is not null) found.SetResult(printed);
            else if (_exited.Task.IsCompleted) found.SetException(new InvalidOperationException($"ftpcluster exited first:{Environment.NewLine}{Stderr}"));
            else _awaited.Add((match, found));
        }
        return found.Task.WaitAsync(Timeout);
    }

    public async Task<int> WaitExitAsync()
    {
        try
        {
            await _exited.Task.WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"ftpcluster still runs after {Timeout}:{Environment.NewLine}{Stderr}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, what a service manager sends (Ctrl+C's SIGINT takes the same path).</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>SIGKILL: the process gets no chance to stop what it started.</summary>
    public void KillAbruptly() => _process.Kill();

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
