using System.Diagnostics;
using System.Runtime.InteropServices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>
/// A short benchmark of a device's matrix kernel, in GFLOP/s: what a silo reports as its capacity when
/// none is given, so that the planner gives a faster device more layers. Every device runs the same
/// shape through the same path a stage does (a prefill-like GEMM on device buffers), so the figures of a
/// GPU silo and a CPU silo compare.
/// </summary>
public static class DeviceSpeed
{
    /// <summary>Rows × out × in features of the measured product: a short prefill of a small model's projection.</summary>
    public const int Rows = 32, Size = 512;

    /// <summary>GFLOP/s of y[Rows, Size] = x · Wᵀ with f32 weights, after one untimed warm-up, over about <paramref name="budget"/> of repetitions (at least one).</summary>
    public static double MeasureGflops(IComputeDevice device, TimeSpan budget)
    {
        string path = Path.Combine(Path.GetTempPath(), $"ftpcluster-speed-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
        try
        {
            File.WriteAllBytes(path, MemoryMarshal.AsBytes(RandomFloats(Size * Size, seed: 1).AsSpan()).ToArray());
            using var file = MappedFile.Open(path);
            using var weights = device.PrepareMatrix(new WeightTensor("capacity benchmark", file, 0, TensorDType.F32, [Size, Size]));
            using var x = device.UploadNew<float>(RandomFloats(Rows * Size, seed: 2));
            using var y = device.Allocate<float>(Rows * Size);
            var lastOutput = new float[1];
            void Multiply() => device.MatMul(x.All, Rows, weights, y.All);
            // Reading one output back waits for the kernels launched before it (ILGPU launches are asynchronous).
            void Wait() => device.Download(y.Span(1), lastOutput);

            Multiply();
            Wait();
            var clock = Stopwatch.StartNew();
            long repetitions = 0;
            do
            {
                Multiply();
                Wait();
                repetitions++;
            }
            while (clock.Elapsed < budget);
            return 2.0 * Rows * Size * Size * repetitions / clock.Elapsed.TotalSeconds / 1e9;
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static float[] RandomFloats(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() - 0.5);
        return values;
    }
}
