namespace FtpCluster.Compute.Devices;

/// <summary>Creates the backend a user names. There is no fallback: a device that cannot be had is an error.</summary>
public static class ComputeDevices
{
    public static readonly string[] Names = ["cpu", "ilgpu-cpu", "cuda"];

    /// <param name="threads">CPU threads; 0 uses every core.</param>
    /// <param name="profiling">An ILGPU device that can time its operations (<see cref="IlgpuDevice.StartProfile"/>).</param>
    public static IComputeDevice Create(string name, int threads = 0, bool profiling = false) => name switch
    {
        "cpu" when profiling => throw new ArgumentException("profiling times the operations of an ILGPU device (ilgpu-cpu or cuda), not of cpu"),
        "cpu" => new CpuDevice(threads),
        "ilgpu-cpu" => IlgpuDevice.Create(IlgpuTarget.Cpu, profiling),
        "cuda" => IlgpuDevice.Create(IlgpuTarget.Cuda, profiling),
        _ => throw new ArgumentException($"unknown device '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
