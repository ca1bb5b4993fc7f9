using System.Diagnostics;
using System.Runtime.InteropServices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>
/// A short benchmark of a device's matrix kernel, in GFLOP/s: what a silo reports as its capacity when
/// none is given, so that the planner gives a faster device more layers. Every device runs the same
/// shape through the same path a stage does (a prefill-like GEMM on device buffers), so the figures of a
/// GPU silo and a CPU silo compare (each at the size its speed allows, see <see cref="Sizes"/>).
/// </summary>
public static class DeviceSpeed
{
    /// <summary>Input rows of the measured product: a short prefill.</summary>
    public const int Rows = 32;

    /// <summary>
    /// Square weight sizes tried in turn: a size whose one product already takes an eighth of the budget is
    /// measured (a slow device, such as ILGPU's CPU accelerator, stops early); otherwise the next, up to the
    /// last, large enough that a GPU is measured at throughput rather than at launch latency.
    /// </summary>
    public static readonly int[] Sizes = [128, 256, 512, 1024, 2048];

    /// <summary>GFLOP/s of y[Rows, size] = x · Wᵀ with f32 weights, after one untimed warm-up, over about <paramref name="budget"/> of repetitions (at least one).</summary>
    public static double MeasureGflops(IComputeDevice device, TimeSpan budget)
    {
        foreach (int size in Sizes)
        {
            using var product = new Product(device, size);
            product.Run();
            var clock = Stopwatch.StartNew();
            product.Run();
            if (clock.Elapsed < budget / 8 && size != Sizes[^1])
                continue;
            clock.Restart();
            long repetitions = 0;
            do
            {
                product.Run();
                repetitions++;
            }
            while (clock.Elapsed < budget);
            return 2.0 * Rows * size * size * repetitions / clock.Elapsed.TotalSeconds / 1e9;
        }
        throw new InvalidOperationException("no benchmark size was measured");
    }

    /// <summary>One measured shape: the weights, input and output on the device, in a temporary file for as long as it lives.</summary>
    private sealed class Product : IDisposable
    {
        private readonly IComputeDevice _device;
        private readonly string _path;
        private readonly MappedFile _file;
        private readonly IDeviceMatrix _weights;
        private readonly DeviceBuffer<float> _x, _y;
        private readonly float[] _lastOutput = new float[1];

        public Product(IComputeDevice device, int size)
        {
            _device = device;
            _path = Path.Combine(Path.GetTempPath(), $"ftpcluster-speed-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
            File.WriteAllBytes(_path, MemoryMarshal.AsBytes(RandomFloats(size * size, seed: 1).AsSpan()).ToArray());
            _file = MappedFile.Open(_path);
            _weights = device.PrepareMatrix(new WeightTensor("capacity benchmark", _file, 0, TensorDType.F32, [size, size]));
            _x = device.UploadNew<float>(RandomFloats(Rows * size, seed: 2));
            _y = device.Allocate<float>(Rows * size);
        }

        /// <summary>One product; reading one output back waits for it (ILGPU launches are asynchronous).</summary>
        public void Run()
        {
            _device.MatMul(_x.All, Rows, _weights, _y.All);
            _device.Download(_y.Span(1), _lastOutput);
        }

        public void Dispose()
        {
            _x.Dispose();
            _y.Dispose();
            _weights.Dispose();
            _file.Dispose();
            File.Delete(_path);
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
