using FtpCluster.Compute.Devices;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// Fills in what a silo measures on its device before it publishes its metadata (which the planner reads):
/// its capacity (<see cref="FtpClusterSiloOptions.MeasureCapacity"/>) and, on CUDA, its memory budget
/// (<see cref="FtpClusterSiloOptions.MemoryBudgetFromDevice"/>). It opens the device for the measurement
/// and closes it again; the silo opens its own when it starts.
/// </summary>
public static class SiloDeviceMeasurement
{
    /// <summary>How long the capacity benchmark repeats its GEMM, after one warm-up.</summary>
    public static readonly TimeSpan CapacityBenchmark = TimeSpan.FromMilliseconds(300);

    /// <summary>The share of a GPU's free memory taken as the weight budget; the rest is for activations, scratch and the CUDA runtime.</summary>
    public const double DeviceMemoryShare = 0.9;

    /// <summary>
    /// The memory budget a silo on <paramref name="device"/> takes when it is given none: <see cref="DeviceMemoryShare"/>
    /// of a CUDA device's free memory, else the host's default (<see cref="FtpClusterSiloOptions.DefaultMemoryBudgetBytes"/>).
    /// </summary>
    public static long DefaultMemoryBudget(IComputeDevice device) => device is IlgpuDevice { Target: IlgpuTarget.Cuda } gpu
        ? (long)(gpu.FreeMemoryBytes() * DeviceMemoryShare)
        : FtpClusterSiloOptions.DefaultMemoryBudgetBytes();

    /// <summary>
    /// Measures what <paramref name="options"/> ask to be measured and writes it into them. A device that
    /// cannot be opened measures nothing: the silo's start then fails on it with the device list.
    /// </summary>
    public static void Apply(FtpClusterSiloOptions options)
    {
        if (!options.MeasureCapacity && !options.MemoryBudgetFromDevice)
            return;
        IComputeDevice device;
        try
        {
            device = ComputeDevices.Create(options.Device, options.Threads);
        }
        catch (InvalidOperationException)
        {
            return;
        }
        using (device)
        {
            if (options.MemoryBudgetFromDevice)
                options.MemoryBudgetBytes = DefaultMemoryBudget(device);
            if (options.MeasureCapacity)
                options.Capacity = DeviceSpeed.MeasureGflops(device, CapacityBenchmark);
        }
    }
}
