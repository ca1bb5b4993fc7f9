using System.Globalization;

namespace FtpCluster.Compute.Devices;

/// <summary>Creates the backend a user names. There is no fallback: a device that cannot be had is an error.</summary>
public static class ComputeDevices
{
    /// <summary>The device names, as command lines complete them; <c>cuda:N</c> (<see cref="CudaIndex"/>) is taken too.</summary>
    public static readonly string[] Names = ["cpu", "ilgpu-cpu", "cuda"];

    /// <summary>What a device option takes, for messages.</summary>
    public const string Expected = "cpu, ilgpu-cpu, cuda, or cuda:N for the CUDA device numbered N";

    public static bool IsKnown(string name) => Names.Contains(name) || CudaIndex(name) is not null;

    /// <param name="threads">CPU threads; 0 uses every core.</param>
    /// <param name="profiling">An ILGPU device that can time its operations (<see cref="IlgpuDevice.StartProfile"/>).</param>
    public static IComputeDevice Create(string name, int threads = 0, bool profiling = false) => name switch
    {
        "cpu" when profiling => throw new ArgumentException("profiling times the operations of an ILGPU device (ilgpu-cpu or cuda), not of cpu"),
        "cpu" => new CpuDevice(threads),
        "ilgpu-cpu" => IlgpuDevice.Create(IlgpuTarget.Cpu, profiling),
        _ when CudaIndex(name) is { } index => IlgpuDevice.Create(IlgpuTarget.Cuda, profiling, index),
        _ => throw new ArgumentException($"unknown device '{name}' (expected {Expected})"),
    };

    /// <summary>
    /// The CUDA device a name picks, as the driver numbers them (after <c>CUDA_VISIBLE_DEVICES</c>): 0 for <c>cuda</c>,
    /// N for <c>cuda:N</c>; null for a name that picks no CUDA device.
    /// </summary>
    public static int? CudaIndex(string name) =>
        name == "cuda" ? 0
        : name.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(name.AsSpan("cuda:".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int index) ? index
        : null;

    /// <summary>
    /// The device of the <paramref name="silo"/>-th (from 0) of several silos started together on one machine.
    /// <c>cuda</c> puts them one to a GPU (<c>cuda:0</c>, <c>cuda:1</c>, ...): silos sharing a GPU would each take its
    /// free memory as their budget. Every other name, <c>cuda:N</c> included, is the same for all.
    /// </summary>
    public static string OfLocalSilo(string name, int silo) => name == "cuda" ? $"cuda:{silo}" : name;
}
