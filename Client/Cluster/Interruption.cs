using System.Runtime.InteropServices;

namespace FtpCluster.Client.Cluster;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM as a cancellation token, so a command that owns silos unwinds and
/// stops them instead of dying with them still running. A second signal ends the process at once
/// (its silos then stop on their own when they see it gone).
/// </summary>
public sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration[] _registrations;

    public Interruption()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    public CancellationToken Token => _source.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (_source.IsCancellationRequested) return;
        context.Cancel = true;
        _source.Cancel();
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _source.Dispose();
    }
}
