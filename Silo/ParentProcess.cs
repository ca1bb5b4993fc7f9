using System.Diagnostics;

namespace FtpCluster.Silo;

/// <summary>Watches the process that started this silo (<c>--parent-pid</c>).</summary>
internal static class ParentProcess
{
    public static readonly TimeSpan OrphanShutdownTimeout = TimeSpan.FromSeconds(5);

    // Once the parent has died we are re-parented, and a wrapper may have started us in the first place,
    // so the operating system has no exit notification for us to wait on: poll.
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Waits until <paramref name="stopping"/> fires (false) or, when <paramref name="parentProcessId"/>
    /// is given, until that process is no longer running (true; at once if it was not running at all).
    /// </summary>
    public static async Task<bool> WaitUntilStoppingOrOrphanedAsync(int? parentProcessId, CancellationToken stopping)
    {
        try
        {
            if (parentProcessId is not { } id)
            {
                await Task.Delay(Timeout.Infinite, stopping);
                return false;
            }
            using var parent = Process.GetProcessById(id);
            using var timer = new PeriodicTimer(PollInterval);
            while (!parent.HasExited)
                await timer.WaitForNextTickAsync(stopping);
            return true;
        }
        catch (ArgumentException)
        {
            // GetProcessById: no process has that id.
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
