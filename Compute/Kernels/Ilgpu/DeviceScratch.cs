using ILGPU;
using ILGPU.Runtime;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// Device buffers for activations, one per slot, reused across calls and grown (never shrunk) to the
/// largest request, so a steady stream of same-sized calls allocates nothing.
/// </summary>
internal sealed class DeviceScratch(Accelerator accelerator, int slots) : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense>?[] _floats = new MemoryBuffer1D<float, Stride1D.Dense>?[slots];
    private readonly MemoryBuffer1D<int, Stride1D.Dense>?[] _ints = new MemoryBuffer1D<int, Stride1D.Dense>?[slots];

    /// <summary>The first <paramref name="length"/> floats of the slot; contents are whatever was there.</summary>
    public ArrayView<float> Floats(int slot, long length) => Grow(_floats, slot, length).SubView(0, length);

    public ArrayView<int> Ints(int slot, long length) => Grow(_ints, slot, length).SubView(0, length);

    public ArrayView<float> Upload(int slot, ReadOnlySpan<float> data)
    {
        var view = Floats(slot, data.Length);
        view.CopyFromCPU(data);
        return view;
    }

    public ArrayView<int> Upload(int slot, ReadOnlySpan<int> data)
    {
        var view = Ints(slot, data.Length);
        view.CopyFromCPU(data);
        return view;
    }

    private ArrayView<T> Grow<T>(MemoryBuffer1D<T, Stride1D.Dense>?[] buffers, int slot, long length)
        where T : unmanaged
    {
        var buffer = buffers[slot];
        if (buffer is null || buffer.Length < length)
        {
            // Doubling keeps a slowly growing batch (a sequence's keys) from reallocating on every call.
            long capacity = Math.Max(Math.Max(length, 2 * (buffer?.Length ?? 0)), 256);
            buffer?.Dispose();
            buffer = accelerator.Allocate1D<T>(capacity);
            buffers[slot] = buffer;
        }
        return buffer.View;
    }

    public void Dispose()
    {
        foreach (var b in _floats) b?.Dispose();
        foreach (var b in _ints) b?.Dispose();
    }
}
