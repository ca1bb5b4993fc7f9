using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FtpCluster.Compute.Kernels.Ilgpu;
using FtpCluster.Compute.Models;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace FtpCluster.Compute.Devices;

/// <summary>Which accelerator an <see cref="IlgpuDevice"/> runs on.</summary>
public enum IlgpuTarget
{
    /// <summary>ILGPU's CPU accelerator: emulates GPU groups and warps with threads. For tests; slow.</summary>
    Cpu,

    /// <summary>The first CUDA device.</summary>
    Cuda,
}

/// <summary>
/// The ILGPU backend. Weights live on the device in their storage type, and so do the activations,
/// KV caches and scratch a stage allocates through it; kernels run on the accelerator's default stream,
/// so they run in the order launched and a download waits for them. Calls are serialized: the device
/// has one stream and one set of scratch buffers.
/// </summary>
public sealed class IlgpuDevice : IComputeDevice
{
    // Scratch slots: the attention weights of one call, or its splits' partial results; the up projection of a SwiGLU over many
    // rows; rows normalized for the GEMMs.
    private const int Probabilities = 0, UpProjection = 1, Splits = 2, NormalizedRows = 3;
    private const int ScratchSlots = 4;

    /// <summary>At most this many floats of attention weights (queries · heads · keys) per launch; longer batches go in query chunks.</summary>
    private const long MaxAttentionProbabilities = 1L << 26;

    /// <summary>Weights are converted to their storage type in chunks of this many elements, so no host copy of a whole matrix is made.</summary>
    private const int UploadChunk = 1 << 20;

    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly IlgpuKernels _kernels;
    private readonly DeviceScratch _scratch;
    private readonly Dictionary<RopeTable, RopeAngleTable> _ropeAngles = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _gate = new();
    private readonly TransferCounter _transfers = new();
    private bool _disposed;

    private IlgpuDevice(Context context, Accelerator accelerator)
    {
        _context = context;
        _accelerator = accelerator;
        Profiling = context.Properties.EnableProfiling;
        try
        {
            _kernels = new IlgpuKernels(accelerator);
            _scratch = new DeviceScratch(accelerator, ScratchSlots);
        }
        catch
        {
            accelerator.Dispose();
            throw;
        }
        Description = $"ilgpu {Describe(accelerator.Device)}";
    }

    public string Description { get; }

    public IlgpuTarget Target => _accelerator.AcceleratorType == AcceleratorType.Cuda ? IlgpuTarget.Cuda : IlgpuTarget.Cpu;

    /// <summary>Whether the device was created with profiling on, so that <see cref="StartProfile"/> may be called.</summary>
    public bool Profiling { get; }

    /// <summary>
    /// Opens the accelerator for <paramref name="target"/>. CUDA must be present: ILGPU's detection
    /// swallows driver errors and would leave only CPU devices, so a missing GPU is an error here,
    /// never a silent fall back.
    /// </summary>
    /// <param name="profiling">Lets <see cref="StartProfile"/> time each operation on the device (off by default).</param>
    /// <param name="cudaIndex">Which CUDA device, as the driver numbers them (after <c>CUDA_VISIBLE_DEVICES</c>).</param>
    public static IlgpuDevice Create(IlgpuTarget target, bool profiling = false, int cudaIndex = 0)
    {
        Context context = target switch
        {
            // 32 lanes per warp and 32 warps per multiprocessor, as on NVIDIA hardware: groups up to 1024 threads.
            IlgpuTarget.Cpu => Context.Create(builder => Profiled(builder.CPU(CPUDeviceKind.Nvidia).EnableAlgorithms(), profiling)),
            IlgpuTarget.Cuda => Context.Create(builder => Profiled(builder.AllAccelerators().EnableAlgorithms(), profiling)),
            _ => throw new ArgumentOutOfRangeException(nameof(target), target, "unknown ILGPU target"),
        };
        try
        {
            var device = target == IlgpuTarget.Cpu
                ? context.GetDevices<CPUDevice>()[0]
                : CudaDevice(context, cudaIndex);
            return new IlgpuDevice(context, device.CreateAccelerator(context));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static Context.Builder Profiled(Context.Builder builder, bool profiling) => profiling ? builder.Profiling() : builder;

    /// <summary>
    /// Every accelerator ILGPU finds on this machine, one line each, for silo logs; a CUDA device's line ends with the
    /// device name that picks it (<c>(--device cuda:1)</c>).
    /// </summary>
    public static IReadOnlyList<string> ListDevices()
    {
        using var context = Context.Create(builder => builder.AllAccelerators());
        int cuda = 0;
        return [.. context.Devices.Select(device => device.AcceleratorType == AcceleratorType.Cuda
            ? $"{Describe(device)} (--device cuda:{cuda++})"
            : Describe(device))];
    }

    /// <summary>The CUDA devices ILGPU finds, <c>cuda:0</c> to <c>cuda:N-1</c>; 0 without an NVIDIA GPU or its driver.</summary>
    public static int CudaDeviceCount()
    {
        using var context = Context.Create(builder => builder.Cuda());
        return context.GetCudaDevices().Count;
    }

    private static Device CudaDevice(Context context, int index)
    {
        var cuda = new List<Device>();
        foreach (var device in context.GetCudaDevices()) cuda.Add(device);
        if (index >= 0 && index < cuda.Count)
            return cuda[index];
        if (cuda.Count > 0)
            throw new InvalidOperationException($"there is no CUDA device {index}: ILGPU found {cuda.Count} "
                + $"({string.Join("; ", cuda.Select((device, i) => $"{Describe(device)} (--device cuda:{i})"))})");
        string found = string.Join("; ", context.Devices.Select(Describe));
        throw new InvalidOperationException(
            "ILGPU found no CUDA device (is an NVIDIA GPU present, and the driver's libcuda loadable?). "
            + $"Devices found: {(found.Length == 0 ? "none" : found)}");
    }

    private static string Describe(Device device) => device.AcceleratorType switch
    {
        AcceleratorType.CPU => $"cpu accelerator (GPU emulation): {device.Name}, warp {device.WarpSize}, "
            + $"{device.MaxNumThreadsPerGroup} threads per group, {device.NumMultiprocessors} multiprocessors",
        _ => $"{device.AcceleratorType.ToString().ToLowerInvariant()}: {device.Name}, "
            + $"{device.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, {device.NumMultiprocessors} multiprocessors, warp {device.WarpSize}",
    };

    /// <remarks>
    /// Quantized types are held as llama.cpp's blocks, the bytes the file holds when it stores that type (uploaded as
    /// they are), else the rows quantized on the host with the same codecs as the CPU device.
    /// </remarks>
    public IDeviceMatrix PrepareMatrix(WeightTensor weight, TensorDType? storage = null)
    {
        var type = storage ?? weight.DType;
        if (type.IsQuantized() && weight.Cols % type.BlockSize() != 0)
            throw new ArgumentException(
                $"{weight.Name}: {type} quantizes each row in blocks of {type.BlockSize()} columns, so it needs a column count that is a multiple of {type.BlockSize()}, but this matrix has {weight.Cols}; keep it as f32, f16 or bf16",
                nameof(storage));
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _kernels.LoadMatrixKernels(type);
            return type switch
            {
                TensorDType.F32 => Matrix(UploadFloats(weight)),
                TensorDType.F16 or TensorDType.BF16 => Matrix(Upload16Bit(weight, type)),
                _ => Matrix(UploadBlocks(weight, type)),
            };
        }

        IlgpuMatrix Matrix<T>(MemoryBuffer1D<T, Stride1D.Dense> weights)
            where T : unmanaged => new(this, weight.Rows, weight.Cols, type, weights, weights.View.AsContiguous().Cast<byte>());
    }

    private MemoryBuffer1D<float, Stride1D.Dense> UploadFloats(WeightTensor weight)
    {
        var buffer = _accelerator.Allocate1D<float>(weight.ElementCount);
        var chunk = new float[Math.Min(UploadChunk, weight.ElementCount)];
        for (long start = 0; start < weight.ElementCount; start += chunk.Length)
        {
            int length = (int)Math.Min(chunk.Length, weight.ElementCount - start);
            weight.CopyTo(chunk.AsSpan(0, length), start);
            buffer.AsContiguous().SubView(start, length).CopyFromCPU(new ReadOnlySpan<float>(chunk, 0, length));
        }
        return buffer;
    }

    /// <summary>The 16-bit patterns of the weights in <paramref name="storage"/>: copied as they are when the file holds that type, rounded to nearest even otherwise.</summary>
    private MemoryBuffer1D<ushort, Stride1D.Dense> Upload16Bit(WeightTensor weight, TensorDType storage)
    {
        var buffer = _accelerator.Allocate1D<ushort>(weight.ElementCount);
        var bits = new ushort[Math.Min(UploadChunk, weight.ElementCount)];
        var floats = weight.DType == storage ? null : new float[bits.Length];
        var stored = MemoryMarshal.Cast<byte, ushort>(weight.DType == storage ? weight.Bytes : default);
        for (long start = 0; start < weight.ElementCount; start += bits.Length)
        {
            int length = (int)Math.Min(bits.Length, weight.ElementCount - start);
            if (floats is null)
            {
                stored.Slice((int)start, length).CopyTo(bits);
            }
            else
            {
                weight.CopyTo(floats.AsSpan(0, length), start);
                for (int i = 0; i < length; i++)
                    bits[i] = storage == TensorDType.F16 ? BitConverter.HalfToUInt16Bits((System.Half)floats[i]) : ToBFloat16(floats[i]);
            }
            buffer.AsContiguous().SubView(start, length).CopyFromCPU(new ReadOnlySpan<ushort>(bits, 0, length));
        }
        return buffer;
    }

    /// <summary>
    /// The rows as blocks of the quantized type <paramref name="storage"/>: the file's bytes when it stores that type,
    /// else each run of rows widened to float32 and quantized (<see cref="WeightEncoding"/>, as the CPU device packs them).
    /// </summary>
    private MemoryBuffer1D<byte, Stride1D.Dense> UploadBlocks(WeightTensor weight, TensorDType storage)
    {
        long rowBytes = storage.ByteCount(weight.Cols);
        var buffer = _accelerator.Allocate1D<byte>(rowBytes * weight.Rows);
        if (weight.DType == storage)
        {
            buffer.AsContiguous().CopyFromCPU(weight.Bytes);
            return buffer;
        }
        int rowsPerChunk = Math.Max(1, UploadChunk / Math.Max(weight.Cols, 1));
        var values = new float[(long)Math.Min(rowsPerChunk, weight.Rows) * weight.Cols];
        var blocks = new byte[Math.Min(rowsPerChunk, weight.Rows) * rowBytes];
        for (int first = 0; first < weight.Rows; first += rowsPerChunk)
        {
            int rows = Math.Min(rowsPerChunk, weight.Rows - first);
            var chunkValues = values.AsSpan(0, rows * weight.Cols);
            var chunkBlocks = blocks.AsSpan(0, checked((int)(rows * rowBytes)));
            weight.CopyTo(chunkValues, (long)first * weight.Cols);
            // Rows are whole blocks, so a run of rows encodes as one run of blocks.
            WeightEncoding.Encode(chunkValues, storage, chunkBlocks);
            buffer.AsContiguous().SubView(first * rowBytes, chunkBlocks.Length).CopyFromCPU((ReadOnlySpan<byte>)chunkBlocks);
        }
        return buffer;
    }

    /// <summary>float32 to bfloat16, rounding to nearest even; NaN stays NaN.</summary>
    internal static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    public DeviceTransfers Transfers => _transfers.Current;

    /// <summary>
    /// Kernels launched and copies made within the device so far: each is a separate piece of work on the stream
    /// with its own launch cost, which a decode step of small matrices can spend more time on than on the work.
    /// </summary>
    public long Launches
    {
        get
        {
            lock (_gate)
                return _kernels.Launches;
        }
    }

    /// <summary>Starts timing each operation on the device; the device must have been created with profiling on.</summary>
    public void StartProfile()
    {
        if (!Profiling)
            throw new InvalidOperationException("this ILGPU device was created without profiling: create it with profiling on to time its operations");
        lock (_gate)
            _kernels.StartProfile();
    }

    /// <summary>Waits for the device, then gives the device time of each kind of operation since <see cref="StartProfile"/>.</summary>
    public DeviceProfile StopProfile()
    {
        lock (_gate)
            return _kernels.StopProfile();
    }

    /// <summary>Bytes of device memory free now (CUDA); for the CPU accelerator, the host memory the process may still use.</summary>
    public long FreeMemoryBytes()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _accelerator is CudaAccelerator cuda ? cuda.GetFreeMemory() : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        }
    }

    public DeviceBuffer<T> Allocate<T>(long length)
        where T : unmanaged
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"a device buffer cannot have {length} elements");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var buffer = _accelerator.Allocate1D<T>(Math.Max(length, 1));
            return new IlgpuBuffer<T>(this, buffer.View.SubView(0, length), buffer);
        }
    }

    public void Upload<T>(ReadOnlySpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged
    {
        if (source.Length > destination.Length)
            throw new ArgumentException($"upload of {source.Length} elements into a device span of {destination.Length}");
        if (source.IsEmpty)
            return;
        lock (_gate)
        {
            View(destination).SubView(0, source.Length).CopyFromCPU(source);
            _transfers.Upload((long)source.Length * Unsafe.SizeOf<T>());
        }
    }

    public void Download<T>(DeviceSpan<T> source, Span<T> destination)
        where T : unmanaged
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"download of {source.Length} elements into a host span of {destination.Length}");
        if (source.IsEmpty)
            return;
        lock (_gate)
        {
            View(source).CopyToCPU(destination[..source.Length]);
            _transfers.Download((long)source.Length * Unsafe.SizeOf<T>());
        }
    }

    public void Copy<T>(DeviceSpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged
    {
        if (source.Length > destination.Length)
            throw new ArgumentException($"copy of {source.Length} elements into a device span of {destination.Length}");
        if (source.IsEmpty)
            return;
        lock (_gate)
            _kernels.Copy(View(source), View(destination).SubView(0, source.Length));
    }

    public void AppendToCaches(DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> positions, IReadOnlyList<SequenceCache> destinations)
    {
        if (destinations.Count == 0)
            return;
        int width = destinations[0].Rows == 0 ? 0 : destinations[0].Keys.Length / destinations[0].Rows;
        foreach (var d in destinations)
            if (d.Rows < 1 || d.Keys.Length != d.Rows * width || d.Values.Length != d.Rows * width || d.Positions.Length != d.Rows
                || (long)(d.FirstRow + d.Rows) * width > Math.Min(keys.Length, values.Length) || d.FirstRow + d.Rows > positions.Length)
                throw new ArgumentException($"cache append of rows [{d.FirstRow}, +{d.Rows}) of {positions.Length}: room for {d.Keys.Length} "
                    + $"floats of keys, {d.Values.Length} of values and {d.Positions.Length} positions, rows of {width}");
        lock (_gate)
            foreach (var (group, firstRow) in Groups(destinations))
            {
                int rows = group.Rows;
                _kernels.AppendToCaches(View(keys).SubView((long)firstRow * width, (long)rows * width),
                    View(values).SubView((long)firstRow * width, (long)rows * width), View(positions).SubView(firstRow, rows), group, width);
            }
    }

    /// <summary>
    /// The sequences eight at a time, each eight as a <see cref="CacheGroup"/> (its rows counted from the group's first)
    /// with that first row of the microbatch. The sequences' rows must be consecutive, in order.
    /// </summary>
    private IEnumerable<(CacheGroup Group, int FirstRow)> Groups(IReadOnlyList<SequenceCache> sequences)
    {
        var slots = new CacheSlot[CacheGroup.Capacity];
        for (int start = 0; start < sequences.Count; start += CacheGroup.Capacity)
        {
            int count = Math.Min(CacheGroup.Capacity, sequences.Count - start), firstRow = sequences[start].FirstRow;
            for (int i = 0; i < count; i++)
            {
                var s = sequences[start + i];
                if (i > 0 && s.FirstRow != slots[i - 1].FirstRow + slots[i - 1].Rows + firstRow)
                    throw new ArgumentException($"the sequences' rows must be consecutive: rows [{s.FirstRow}, +{s.Rows}) after [{slots[i - 1].FirstRow + firstRow}, +{slots[i - 1].Rows})");
                slots[i] = new CacheSlot(s.FirstRow - firstRow, s.Rows, View(s.Keys), View(s.Values), View(s.Positions));
            }
            yield return (new CacheGroup(slots.AsSpan(0, count)), firstRow);
        }
    }

    public void MatMul(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y) => MatMul(x, m, w, y, MatMulOutput.Store);

    public void MatMulAdd(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y) => MatMul(x, m, w, y, MatMulOutput.Add);

    private void MatMul(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y, MatMulOutput output)
    {
        var matrix = Own(w);
        var shape = new MatMulShape(m, matrix.Rows, matrix.Cols, output);
        if (m < 0 || x.Length < (long)m * shape.K || y.Length < (long)m * shape.N)
            throw new ArgumentException($"GEMM shapes: x has {x.Length} floats for [{m}, {shape.K}], y has {y.Length} for [{m}, {shape.N}]");
        if (m == 0)
            return;
        lock (_gate)
            Multiply(View(x).SubView(0, (long)m * shape.K), matrix, View(y).SubView(0, (long)m * shape.N), shape);
    }

    private void Multiply(ArrayView<float> x, IlgpuMatrix matrix, ArrayView<float> y, MatMulShape shape) =>
        _kernels.MatMul(x, matrix.Bytes, matrix.StorageType, y, shape);

    public void RmsNorm(DeviceSpan<float> x, DeviceSpan<float> weight, float eps, DeviceSpan<float> y)
    {
        int dim = weight.Length, rows = dim == 0 ? 0 : x.Length / dim;
        if (y.Length < rows * dim)
            throw new ArgumentException($"RMSNorm: y has {y.Length} floats for {rows} rows of {dim}");
        if (rows == 0)
            return;
        lock (_gate)
            _kernels.RmsNorm(View(x), View(weight), View(y), rows, dim, eps);
    }

    public void Rope(DeviceSpan<float> q, int heads, DeviceSpan<float> k, int kvHeads, DeviceSpan<int> positions, int maxPosition, RopeTable table)
    {
        int rows = positions.Length;
        if (q.Length < (long)rows * heads * table.HeadDim || k.Length < (long)rows * kvHeads * table.HeadDim)
            throw new ArgumentException($"RoPE: q has {q.Length} and k {k.Length} floats for {rows} rows of {heads} and {kvHeads} heads × {table.HeadDim}");
        if (maxPosition < 0)
            throw new ArgumentOutOfRangeException(nameof(maxPosition), $"RoPE: position {maxPosition} is negative");
        if (rows == 0)
            return;
        lock (_gate)
        {
            if (!_ropeAngles.TryGetValue(table, out var angles))
                _ropeAngles[table] = angles = new RopeAngleTable(_accelerator, table);
            angles.Cover(maxPosition);
            var queries = View(q);
            // Without keys the kernel never reads k; it still takes a view.
            _kernels.Rope(queries, kvHeads > 0 ? View(k) : queries, View(positions), angles.Cos, angles.Sin,
                RopeShape.For(heads, kvHeads, table.HeadDim, table.Layout));
        }
    }

    public void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions,
        DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> keyPositions,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output, DeviceSpan<float> keyAttention)
    {
        int nq = queryPositions.Length, nk = keyPositions.Length;
        long qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"attention: heads ({heads}) must be a multiple of kv heads ({kvHeads})");
        if (q.Length < nq * qWidth || output.Length < nq * qWidth || keys.Length < nk * kvWidth || values.Length < nk * kvWidth
            || (!keyAttention.IsEmpty && keyAttention.Length < nk))
            throw new ArgumentException($"attention shapes: {nq} queries and {nk} keys of {heads}/{kvHeads} heads × {headDim} do not fit the spans given");
        if (nq == 0)
            return;
        bool wantKeyAttention = !keyAttention.IsEmpty;
        float scale = 1f / MathF.Sqrt(headDim);
        var whole = new AttentionShape(nq, nk, heads, kvHeads, headDim, scale);
        lock (_gate)
        {
            // Without totals no weight needs keeping. A decoded row over a long cache: its keys split over many warps.
            if (!wantKeyAttention && _kernels.SplitsKeys(whole))
            {
                var cache = new CacheGroup([new CacheSlot(0, nq, View(keys), View(values), View(keyPositions))]);
                _kernels.SplitKeyAttention(View(q), View(queryPositions), cache, _scratch.Floats(Splits, IlgpuKernels.SplitPartials(whole)),
                    View(output), whole);
                return;
            }
            // Else the tiled kernel takes every query in one launch.
            if (!wantKeyAttention && _kernels.FitsTiledAttention(whole))
            {
                _kernels.TiledAttention(View(q), View(queryPositions), View(keys), View(values), View(keyPositions),
                    View(output), whole);
                return;
            }
            var qView = View(q);
            var outView = View(output);
            var totals = wantKeyAttention ? View(keyAttention).SubView(0, nk) : default;
            if (wantKeyAttention)
                totals.MemSetToZero();
            // Every query row's attention weights sit in device memory until its chunk is summed into the totals.
            int chunk = (int)Math.Clamp(MaxAttentionProbabilities / ((long)heads * Math.Max(nk, 1)), 1, nq);
            for (int start = 0; start < nq; start += chunk)
            {
                int count = Math.Min(chunk, nq - start);
                var shape = whole with { Queries = count };
                var probabilities = _scratch.Floats(Probabilities, Math.Max((long)count * heads * nk, 1));
                _kernels.Attention(
                    qView.SubView(start * qWidth, count * qWidth), View(queryPositions).SubView(start, count),
                    View(keys), View(values), View(keyPositions),
                    outView.SubView(start * qWidth, count * qWidth), probabilities, shape);
                if (wantKeyAttention && nk > 0)
                    _kernels.AddKeyTotals(probabilities, totals, shape);
            }
        }
    }

    public void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions, IReadOnlyList<SequenceCache> sequences,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output)
    {
        int width = heads * headDim;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"attention: heads ({heads}) must be a multiple of kv heads ({kvHeads})");
        foreach (var s in sequences)
            if (s.Rows < 0 || s.FirstRow < 0 || s.FirstRow + s.Rows > queryPositions.Length || (long)(s.FirstRow + s.Rows) * width > Math.Min(q.Length, output.Length)
                || s.Keys.Length < (long)s.Entries * kvHeads * headDim || s.Values.Length < (long)s.Entries * kvHeads * headDim)
                throw new ArgumentException($"attention of rows [{s.FirstRow}, +{s.Rows}) over {s.Entries} keys of {heads}/{kvHeads} heads × {headDim} "
                    + "does not fit the spans given");
        float scale = 1f / MathF.Sqrt(headDim);
        // A sequence of fewer rows than a query tile (a decoded row) takes the split kernel, which attends for up to eight
        // such sequences in one launch, each over its own cache; one alone only where its keys split. Others take the
        // one-sequence path, a launch each.
        bool Splittable(SequenceCache s) => s.Rows < AttentionKernels.QueryTile
            && _kernels.FitsTiledAttention(new AttentionShape(s.Rows, s.Entries, heads, kvHeads, headDim, scale));
        for (int start = 0, end; start < sequences.Count; start = end)
        {
            // A run of splittable sequences, or one that is not.
            end = start + 1;
            while (end < sequences.Count && Splittable(sequences[start]) && Splittable(sequences[end]))
                end++;
            var first = sequences[start];
            if (end - start == 1 && !(Splittable(first) && _kernels.SplitsKeys(new AttentionShape(first.Rows, first.Entries, heads, kvHeads, headDim, scale))))
            {
                Attention(q.Slice(first.FirstRow * width, first.Rows * width), queryPositions.Slice(first.FirstRow, first.Rows), first.Keys,
                    first.Values, first.Positions, heads, kvHeads, headDim, output.Slice(first.FirstRow * width, first.Rows * width), default);
                continue;
            }
            var run = Enumerable.Range(start, end - start).Select(i => sequences[i]).ToList();
            lock (_gate)
                foreach (var (group, firstRow) in Groups(run))
                {
                    var shape = new AttentionShape(group.Rows, Math.Max(1, group.MostEntries), heads, kvHeads, headDim, scale);
                    _kernels.SplitKeyAttention(View(q).SubView((long)firstRow * width, (long)group.Rows * width),
                        View(queryPositions).SubView(firstRow, group.Rows), group, _scratch.Floats(Splits, IlgpuKernels.SplitPartials(shape)),
                        View(output).SubView((long)firstRow * width, (long)group.Rows * width), shape);
                }
        }
    }

    public void QkvMatMul(DeviceSpan<float> x, int m, IDeviceMatrix wq, DeviceSpan<float> q, IDeviceMatrix wk, DeviceSpan<float> k,
        IDeviceMatrix wv, DeviceSpan<float> v, RowNorm? norm = null)
    {
        IlgpuMatrix queries = Own(wq), keys = Own(wk), values = Own(wv);
        var shape = new QkvShape(m, queries.Cols, queries.Rows, keys.Rows, values.Rows, norm?.Eps ?? 0);
        if (keys.Cols != shape.K || values.Cols != shape.K)
            throw new ArgumentException($"q/k/v products: the matrices take rows of {queries.Cols}, {keys.Cols} and {values.Cols}");
        if (m < 0 || x.Length < (long)m * shape.K || q.Length < (long)m * shape.QueryColumns
            || k.Length < (long)m * shape.KeyColumns || v.Length < (long)m * shape.ValueColumns)
            throw new ArgumentException($"q/k/v products of {m} rows: x has {x.Length} floats, q {q.Length}, k {k.Length}, v {v.Length}");
        CheckNorm(norm, shape.K);
        if (m == 0)
            return;
        var storage = queries.StorageType;
        lock (_gate)
        {
            var input = View(x).SubView(0, (long)m * shape.K);
            var qView = View(q).SubView(0, (long)m * shape.QueryColumns);
            var kView = View(k).SubView(0, (long)m * shape.KeyColumns);
            var vView = View(v).SubView(0, (long)m * shape.ValueColumns);
            if (IlgpuKernels.UseGemv(m) && keys.StorageType == storage && values.StorageType == storage)
            {
                _kernels.QkvGemv(input, queries.Bytes, keys.Bytes, values.Bytes, storage, qView, kView, vView, shape, NormWeight(norm));
                return;
            }
            // Many rows are compute-bound GEMMs; mixed storage types (a Q4_K_M file's Q6_K values) take three kernels.
            input = Normalized(input, m, shape.K, norm);
            Multiply(input, queries, qView, new MatMulShape(m, shape.QueryColumns, shape.K));
            Multiply(input, keys, kView, new MatMulShape(m, shape.KeyColumns, shape.K));
            Multiply(input, values, vView, new MatMulShape(m, shape.ValueColumns, shape.K));
        }
    }

    public void SwiGluMatMul(DeviceSpan<float> x, int m, IDeviceMatrix gate, IDeviceMatrix up, DeviceSpan<float> y, RowNorm? norm = null)
    {
        IlgpuMatrix gates = Own(gate), ups = Own(up);
        if (ups.Rows != gates.Rows || ups.Cols != gates.Cols)
            throw new ArgumentException($"SwiGLU: gate [{gates.Rows}, {gates.Cols}] and up [{ups.Rows}, {ups.Cols}] differ in shape");
        var shape = new MatMulShape(m, gates.Rows, gates.Cols, NormEps: norm?.Eps ?? 0);
        if (m < 0 || x.Length < (long)m * shape.K || y.Length < (long)m * shape.N)
            throw new ArgumentException($"SwiGLU shapes: x has {x.Length} floats for [{m}, {shape.K}], y has {y.Length} for [{m}, {shape.N}]");
        CheckNorm(norm, shape.K);
        if (m == 0)
            return;
        lock (_gate)
        {
            var input = View(x).SubView(0, (long)m * shape.K);
            var output = View(y).SubView(0, (long)m * shape.N);
            if (IlgpuKernels.UseGemv(m) && gates.StorageType == ups.StorageType)
            {
                _kernels.SwiGluGemv(input, gates.Bytes, ups.Bytes, gates.StorageType, output, shape, NormWeight(norm));
                return;
            }
            // Many rows: the products are compute-bound GEMMs, and the norm and gating passes are small beside them.
            input = Normalized(input, m, shape.K, norm);
            var upProduct = _scratch.Floats(UpProjection, (long)m * shape.N);
            Multiply(input, gates, output, shape);
            Multiply(input, ups, upProduct, shape);
            _kernels.SwiGlu(output, upProduct);
        }
    }

    private static void CheckNorm(RowNorm? norm, int width)
    {
        if (norm is { } n && n.Weight.Length != width)
            throw new ArgumentException($"RMSNorm: a weight of {n.Weight.Length} for rows of {width}");
    }

    /// <summary>The norm's weight on the device, or an empty view (no norm), as the GEMV kernels take it.</summary>
    private ArrayView<float> NormWeight(RowNorm? norm) => norm is { } n ? View(n.Weight) : default;

    /// <summary>The rows themselves, or RMS-normalized into scratch when a norm is given (for the GEMMs, which take no norm).</summary>
    private ArrayView<float> Normalized(ArrayView<float> rows, int m, int width, RowNorm? norm)
    {
        if (norm is not { } n)
            return rows;
        var normalized = _scratch.Floats(NormalizedRows, (long)m * width);
        _kernels.RmsNorm(rows, View(n.Weight), normalized, m, width, n.Eps);
        return normalized;
    }

    public void AddBias(DeviceSpan<float> x, DeviceSpan<float> bias)
    {
        int rows = bias.IsEmpty ? 0 : x.Length / bias.Length;
        if (rows == 0)
            return;
        lock (_gate)
            _kernels.AddBias(View(x).SubView(0, (long)rows * bias.Length), View(bias));
    }

    public void GatherRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination)
    {
        if (destination.Length < (long)rows.Length * width)
            throw new ArgumentException($"gather: {rows.Length} rows of {width} do not fit a destination of {destination.Length} floats");
        if (rows.IsEmpty)
            return;
        lock (_gate)
            _kernels.GatherRows(View(source), View(rows), width, View(destination));
    }

    public void ScatterRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination)
    {
        if (source.Length < (long)rows.Length * width)
            throw new ArgumentException($"scatter: {rows.Length} rows of {width} are more than the source's {source.Length} floats");
        if (rows.IsEmpty)
            return;
        lock (_gate)
            _kernels.ScatterRows(View(source), View(rows), width, View(destination));
    }

    /// <summary>The device memory behind a span of one of this device's buffers.</summary>
    private ArrayView<T> View<T>(DeviceSpan<T> span)
        where T : unmanaged =>
        span.Buffer is IlgpuBuffer<T> buffer && buffer.Owner == this
            ? buffer.View.SubView(span.Offset, span.Length)
            : throw new ArgumentException($"a {span.Buffer.GetType().Name} of {span.Buffer.Owner.Description} is not memory of this ILGPU device");

    private IlgpuMatrix Own(IDeviceMatrix w) =>
        w is IlgpuMatrix m && m.Owner == this
            ? m
            : throw new ArgumentException($"matrix {w.GetType().Name} was not prepared by this ILGPU device", nameof(w));

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (var table in _ropeAngles.Values) table.Dispose();
            _scratch.Dispose();
            _accelerator.Dispose();
            _context.Dispose();
        }
    }

    /// <summary>
    /// A weight matrix in device memory: float32 for F32, the 16-bit patterns for F16 and BF16, llama.cpp's blocks
    /// (bytes) for the quantized types.
    /// </summary>
    /// <param name="bytes">The weights' bytes, which the kernels of <paramref name="storage"/> read as floats, 16-bit patterns or blocks.</param>
    private sealed class IlgpuMatrix(IlgpuDevice owner, int rows, int cols, TensorDType storage, MemoryBuffer weights, ArrayView<byte> bytes)
        : IDeviceMatrix
    {
        public IlgpuDevice Owner { get; } = owner;
        public int Rows { get; } = rows;
        public int Cols { get; } = cols;
        public TensorDType StorageType { get; } = storage;
        public long ResidentBytes => weights.LengthInBytes;

        public ArrayView<byte> Bytes { get; } = bytes;

        public void Dispose() => weights.Dispose();
    }
}

/// <summary>ILGPU device memory: a view, and the buffer it frees when it owns one (a <see cref="Reinterpret{TOther}"/> view owns none).</summary>
internal sealed class IlgpuBuffer<T>(IlgpuDevice owner, ArrayView<T> view, MemoryBuffer? owned) : DeviceBuffer<T>(owner, view.Length)
    where T : unmanaged
{
    public ArrayView<T> View { get; } = view;

    public override DeviceBuffer<TOther> Reinterpret<TOther>() => new IlgpuBuffer<TOther>((IlgpuDevice)Owner, View.Cast<TOther>(), null);

    protected override void Release() => owned?.Dispose();
}
