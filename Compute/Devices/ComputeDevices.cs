namespace FtpCluster.Compute.Devices;

/// <summary>Creates the backend a user names. There is no fallback: a device that cannot be had is an error.</summary>
public static class ComputeDevices
{
    public static readonly string[] Names = ["cpu", "ilgpu-cpu", "cuda"];

    /// <param name="threads">CPU threads; 0 uses every core.</param>
    public static IComputeDevice Create(string name, int threads = 0) => name switch
    {
        "cpu" => new CpuDevice(threads),
        "ilgpu-cpu" => IlgpuDevice.Create(IlgpuTarget.Cpu),
        "cuda" => IlgpuDevice.Create(IlgpuTarget.Cuda),
        _ => throw new ArgumentException($"unknown device '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
