using System.Runtime.InteropServices;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>
/// Which accelerator the ILGPU tests run on: ILGPU's CPU accelerator, or CUDA when the environment sets
/// FTPCLUSTER_ILGPU_TESTS=cuda (scripts/gpu-check.sh does, on a machine with an NVIDIA GPU).
/// </summary>
public static class IlgpuTestTarget
{
    public const string Variable = "FTPCLUSTER_ILGPU_TESTS";

    public static IlgpuTarget Target { get; } = Environment.GetEnvironmentVariable(Variable) switch
    {
        null or "" or "cpu" => IlgpuTarget.Cpu,
        "cuda" => IlgpuTarget.Cuda,
        var other => throw new InvalidOperationException($"{Variable}={other}: expected cpu or cuda"),
    };
}

/// <summary>
/// One ILGPU device (on <see cref="IlgpuTestTarget.Target"/>) and one CPU device (the reference), shared by a test class
/// because the accelerator takes a while to start; plus a temp folder for weight files.
/// </summary>
public sealed class IlgpuFixture : IDisposable
{
    private readonly List<MappedFile> _files = [];
    private int _fileCount;

    public IlgpuFixture()
    {
        Folder = Directory.CreateTempSubdirectory("ftpcluster-ilgpu-").FullName;
        Ilgpu = IlgpuDevice.Create(IlgpuTestTarget.Target);
        Cpu = new CpuDevice(2);
    }

    public IlgpuDevice Ilgpu { get; }
    public CpuDevice Cpu { get; }
    public string Folder { get; }

    /// <summary>
    /// A [rows, cols] tensor stored as <paramref name="dtype"/> in a file of its own, holding <paramref name="values"/>
    /// rounded to that type (quantized row by row into llama.cpp's blocks for a quantized type).
    /// </summary>
    public WeightTensor Tensor(float[] values, int rows, int cols, TensorDType dtype)
    {
        byte[] bytes;
        switch (dtype)
        {
            case TensorDType.F32:
                bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
                break;
            case TensorDType.F16:
                bytes = MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray();
                break;
            case TensorDType.BF16:
                bytes = MemoryMarshal.AsBytes(values.Select(IlgpuDevice.ToBFloat16).ToArray().AsSpan()).ToArray();
                break;
            default:
                bytes = new byte[dtype.ByteCount(values.Length)];
                WeightEncoding.Encode(values, dtype, bytes);
                break;
        }
        string path = Path.Combine(Folder, $"tensor{Interlocked.Increment(ref _fileCount)}.bin");
        File.WriteAllBytes(path, bytes);
        var file = MappedFile.Open(path);
        lock (_files) _files.Add(file);
        return new WeightTensor($"test{_fileCount}", file, 0, dtype, [rows, cols]);
    }

    public void Dispose()
    {
        Ilgpu.Dispose();
        Cpu.Dispose();
        foreach (var f in _files) f.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}

internal static class Numerics
{
    public static float[] Random(int count, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }

    /// <summary>‖actual − expected‖ / ‖expected‖ (Frobenius), in double.</summary>
    public static double RelativeError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance = 1e-5, string what = "result")
    {
        double relative = RelativeError(expected, actual);
        Assert.True(relative < tolerance, $"{what}: relative error {relative:E2} exceeds {tolerance:E0}");
    }
}
