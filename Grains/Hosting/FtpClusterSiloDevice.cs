using FtpCluster.Compute.Devices;
using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The compute device of this silo, opened once when the silo starts (before it joins the cluster, so a
/// silo that asked for a device it does not have never joins) and shared by every stage on the silo,
/// which run their work on its <see cref="ComputeThread"/>.
/// </summary>
public sealed class FtpClusterSiloDevice(FtpClusterSiloOptions options, ILogger<FtpClusterSiloDevice> logger)
    : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private IComputeDevice? _device;
    private ComputeThread? _thread;
    private int _disposed;

    /// <summary>The device; only after the silo has started.</summary>
    public IComputeDevice Device => _device ?? throw NotOpen();

    public string Name => options.Device;

    /// <summary>Runs <paramref name="work"/> (anything that uses the device) on the device's own thread.</summary>
    public Task<T> Run<T>(Func<T> work) => (_thread ?? throw NotOpen()).Run(work);

    /// <inheritdoc cref="Run{T}(Func{T})"/>
    public Task Run(Action work) => (_thread ?? throw NotOpen()).Run(work);

    private static InvalidOperationException NotOpen() => new("the silo's compute device is opened when the silo starts");

    void ILifecycleParticipant<ISiloLifecycle>.Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(FtpClusterSiloDevice), ServiceLifecycleStage.RuntimeInitialize, Open);

    private Task Open(CancellationToken cancellationToken)
    {
        logger.LogInformation("Host CPU: {Cpu}", HostCpu.Describe());
        IReadOnlyList<string> accelerators;
        try
        {
            accelerators = IlgpuDevice.ListDevices();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Listing is diagnostics only; the requested device is still opened (or refused) below.
            accelerators = [$"(ILGPU could not list devices: {e.Message})"];
        }
        foreach (var accelerator in accelerators)
            logger.LogInformation("ILGPU device: {Accelerator}", accelerator);

        _device = ComputeDevices.Create(options.Device, options.Threads);
        _thread = new ComputeThread($"{options.NodeName} compute");
        logger.LogInformation("Node {Node} uses device {Device}: {Description}", options.NodeName, options.Device, _device.Description);
        logger.LogInformation("Node {Node} capacity {Capacity} ({CapacitySource}), memory budget {Budget} MiB ({BudgetSource})",
            options.NodeName, options.Capacity, options.MeasureCapacity ? "measured: GFLOP/s of a GEMM on the device" : "given",
            options.MemoryBudgetBytes / (1024 * 1024), options.MemoryBudgetFromDevice ? "from the device's free memory" : "given or the host's default");
        return Task.CompletedTask;
    }

    /// <remarks>
    /// Called twice when the host is disposed: the container disposes this device both as itself and as the
    /// lifecycle participant it is also registered as; the second call does nothing.
    /// </remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _thread?.Dispose();
        _device?.Dispose();
    }
}
