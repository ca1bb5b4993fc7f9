using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Kernels.Ilgpu;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>
/// Each operation of <see cref="IlgpuDevice"/> on ILGPU's CPU accelerator against <see cref="CpuDevice"/>.
/// Both accumulate in float32 in different orders, so results agree to rounding: 1e-5 relative.
/// Shapes are small and deliberately not multiples of the GEMM tile or the warp.
/// </summary>
public sealed class IlgpuDeviceTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    private readonly IlgpuDevice _ilgpu = fixture.Ilgpu;
    private readonly CpuDevice _cpu = fixture.Cpu;

    [Theory]
    [InlineData(1, 37, 45)] // GEMV: one warp per output, K not a multiple of the warp
    [InlineData(3, 5, 70)] // GEMV with several rows
    [InlineData(5, 37, 45)] // GEMV with more rows than four
    [InlineData(8, 37, 268)] // GEMV with as many rows as it takes, four weights per lane
    [InlineData(9, 37, 45)] // tiled GEMM, every edge partial
    [InlineData(19, 40, 33)] // tiled GEMM over two row tiles
    [InlineData(2, 37, 268)] // GEMV four weights per lane: two whole warp steps of 128 and a partial one
    [InlineData(3, 9, 1164)] // two rounds of four warp steps, then one whole step and a partial one
    [InlineData(64, 37, 268)] // blocked GEMM: one row tile, full
    [InlineData(70, 72, 50)] // blocked GEMM: two row tiles and two column tiles, the second of each partial; K no multiple of 4
    public void MatMul_f32_matches_cpu(int m, int n, int k) => AssertMatMul(m, n, k, TensorDType.F32);

    [Theory]
    [InlineData(1, 50, TensorDType.F16)] // GEMV, one weight per lane (K not a multiple of 4)
    [InlineData(1, 268, TensorDType.F16)] // GEMV, four weights per lane in one 8-byte load
    [InlineData(4, 268, TensorDType.F16)]
    [InlineData(1, 1164, TensorDType.F16)]
    [InlineData(4, 1164, TensorDType.BF16)]
    [InlineData(7, 50, TensorDType.F16)] // GEMV with seven rows
    [InlineData(8, 268, TensorDType.F16)]
    [InlineData(11, 50, TensorDType.F16)] // tiled GEMM
    [InlineData(1, 50, TensorDType.BF16)]
    [InlineData(3, 268, TensorDType.BF16)]
    [InlineData(11, 50, TensorDType.BF16)]
    [InlineData(70, 268, TensorDType.F16)] // blocked GEMM, four weights staged per 8-byte load
    [InlineData(65, 50, TensorDType.BF16)] // blocked GEMM, one weight at a time
    public void MatMul_16bit_storage_matches_cpu(int m, int k, TensorDType dtype) => AssertMatMul(m, 29, k, dtype);

    private void AssertMatMul(int m, int n, int k, TensorDType dtype)
    {
        var weight = fixture.Tensor(Numerics.Random(n * k, seed: n + k), n, k, dtype);
        var x = Numerics.Random(m * k, seed: m);
        using var onIlgpu = _ilgpu.PrepareMatrix(weight);
        using var onCpu = _cpu.PrepareMatrix(weight);
        Assert.Equal(dtype, onIlgpu.StorageType);
        Assert.Equal((long)n * k * dtype.Size(), onIlgpu.ResidentBytes);
        var expected = new float[m * n];
        var actual = new float[m * n];
        _cpu.MatMul(x, m, onCpu, expected);
        _ilgpu.MatMul(x, m, onIlgpu, actual);
        Numerics.AssertClose(expected, actual);
    }

    [Theory]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void PrepareMatrix_rounds_f32_weights_to_a_16bit_storage_type(TensorDType storage)
    {
        const int n = 21, k = 34, m = 6;
        var values = Numerics.Random(n * k, seed: 5);
        // The same values already rounded to the storage type in the file: what the device must hold.
        var rounded = fixture.Tensor(values, n, k, storage);
        using var converted = _ilgpu.PrepareMatrix(fixture.Tensor(values, n, k, TensorDType.F32), storage);
        using var reference = _cpu.PrepareMatrix(rounded);
        Assert.Equal(storage, converted.StorageType);
        Assert.Equal((long)n * k * 2, converted.ResidentBytes);
        var x = Numerics.Random(m * k, seed: 6);
        var expected = new float[m * n];
        var actual = new float[m * n];
        _cpu.MatMul(x, m, reference, expected);
        _ilgpu.MatMul(x, m, converted, actual);
        Numerics.AssertClose(expected, actual);
    }

    [Fact]
    public void RmsNorm_matches_cpu()
    {
        const int rows = 3, dim = 45;
        var x = Numerics.Random(rows * dim, seed: 1, scale: 3f);
        var weight = Numerics.Random(dim, seed: 2);
        var expected = new float[rows * dim];
        var actual = new float[rows * dim];
        _cpu.RmsNorm(x, weight, 1e-5f, expected);
        _ilgpu.RmsNorm(x, weight, 1e-5f, actual);
        Numerics.AssertClose(expected, actual);
    }

    [Theory]
    [InlineData(RopeLayout.AdjacentPairs)]
    [InlineData(RopeLayout.Halves)]
    public void Rope_matches_cpu_in_both_layouts(RopeLayout layout)
    {
        var table = new RopeTable(TinyConfig(headDim: 12, heads: 3, kvHeads: 3) with { RopeLayout = layout });
        int[] positions = [0, 1, 7, 300, 4095];
        var expected = Numerics.Random(positions.Length * 3 * 12, seed: 3);
        var actual = expected.ToArray();
        _cpu.Rope(expected, 3, positions, table);
        _ilgpu.Rope(actual, 3, positions, table);
        Numerics.AssertClose(expected, actual);
    }

    /// <summary>Query and key heads of grouped-query attention rotated in one operation, each by its row's position.</summary>
    [Theory]
    [InlineData(RopeLayout.AdjacentPairs)]
    [InlineData(RopeLayout.Halves)]
    public void Rope_of_queries_and_keys_together_matches_each_alone_on_the_cpu(RopeLayout layout)
    {
        const int heads = 4, kvHeads = 2, headDim = 10;
        var table = new RopeTable(TinyConfig(headDim, heads, kvHeads) with { RopeLayout = layout });
        int[] positions = [2, 3, 64, 900];
        var q = Numerics.Random(positions.Length * heads * headDim, seed: 5);
        var k = Numerics.Random(positions.Length * kvHeads * headDim, seed: 6);
        var expectedQ = q.ToArray();
        var expectedK = k.ToArray();
        _cpu.Rope(expectedQ, heads, positions, table);
        _cpu.Rope(expectedK, kvHeads, positions, table);

        using var queries = _ilgpu.UploadNew<float>(q);
        using var keys = _ilgpu.UploadNew<float>(k);
        using var rowPositions = _ilgpu.UploadNew<int>(positions);
        long launches = _ilgpu.Launches;
        _ilgpu.Rope(queries.All, heads, keys.All, kvHeads, rowPositions.All, positions.Max(), table);
        Assert.Equal(1, _ilgpu.Launches - launches);
        Numerics.AssertClose(expectedQ, _ilgpu.ToArray(queries.All), what: "queries");
        Numerics.AssertClose(expectedK, _ilgpu.ToArray(keys.All), what: "keys");
    }

    [Fact]
    public void Rope_layouts_rotate_different_pairs()
    {
        // Guards the layout test above against a device that ignores the layout.
        var adjacent = new RopeTable(TinyConfig(headDim: 8, heads: 1, kvHeads: 1));
        var halves = new RopeTable(TinyConfig(headDim: 8, heads: 1, kvHeads: 1) with { RopeLayout = RopeLayout.Halves });
        var a = Numerics.Random(8, seed: 4);
        var b = a.ToArray();
        _ilgpu.Rope(a, 1, [5], adjacent);
        _ilgpu.Rope(b, 1, [5], halves);
        Assert.True(Numerics.RelativeError(a, b) > 1e-2);
    }

    public static TheoryData<int[], int[]> AttentionCases => new()
    {
        // A prefill: queries see a growing prefix of the keys, which include earlier cached positions.
        { [4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8] },
        // FTP: this block skipped some tokens, so there are fewer keys than positions, with gaps.
        { [3, 6, 9, 10], [0, 2, 3, 6, 9, 10] },
        // Decode: one query over many keys (more than a warp's worth, so lanes take several keys).
        { [70], Enumerable.Range(0, 71).ToArray() },
    };

    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void Attention_with_grouped_query_heads_matches_cpu(int[] queryPositions, int[] keyPositions)
    {
        const int heads = 4, kvHeads = 2, headDim = 8;
        int nq = queryPositions.Length, nk = keyPositions.Length;
        var q = Numerics.Random(nq * heads * headDim, seed: 10, scale: 2f);
        var keys = Numerics.Random(nk * kvHeads * headDim, seed: 11, scale: 2f);
        var values = Numerics.Random(nk * kvHeads * headDim, seed: 12);
        var expected = new float[nq * heads * headDim];
        var actual = new float[nq * heads * headDim];
        var expectedTotals = new float[nk];
        var actualTotals = new float[nk];
        _cpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, expected, expectedTotals);
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, actual, actualTotals);
        Numerics.AssertClose(expected, actual, what: "attention output");
        Numerics.AssertClose(expectedTotals, actualTotals, what: "per-key attention totals");
        // Each query spreads weight 1 over its keys in every head.
        Assert.Equal(nq * heads, actualTotals.Sum(), 3);

        // Without totals requested the tiled kernel runs: the same output up to the order of rounding.
        var withoutTotals = new float[actual.Length];
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, withoutTotals, Span<float>.Empty);
        Numerics.AssertClose(expected, withoutTotals, what: "attention output without totals");
    }

    [Fact]
    public void Attention_with_large_scores_stays_finite()
    {
        // Scores 1000 and 999 (head dim 1, no scaling) weigh like 1 and 0: output 1 / (1 + e⁻¹).
        var output = new float[1];
        var totals = new float[2];
        _ilgpu.Attention([1000f], [1], [1f, 0.999f], [1f, 0f], [0, 1], 1, 1, 1, output, totals);
        Assert.Equal(1 / (1 + MathF.Exp(-1)), output[0], 4);
        Assert.Equal(1f, totals[0] + totals[1], 5);
    }

    /// <summary>
    /// The gated MLP half, silu(x · gateᵀ) ⊙ (x · upᵀ): one GEMV launch for up to 8 rows (f32, 16-bit and block
    /// weights, K a multiple of 4 or not), two GEMMs and a gating pass beyond; against the same device's two products
    /// gated on the host (the products themselves are checked above and in <see cref="IlgpuQuantizedTests"/>), and
    /// for float weights against the CPU device too (its block-weight products quantize x, so they differ by more
    /// than rounding). Scaled so that silu's negative side counts.
    /// </summary>
    [Theory]
    [InlineData(1, 45, TensorDType.F32)]
    [InlineData(4, 268, TensorDType.F32)]
    [InlineData(9, 45, TensorDType.F32)]
    [InlineData(8, 268, TensorDType.F32)]
    [InlineData(2, 268, TensorDType.F16)]
    [InlineData(2, 1164, TensorDType.F16)]
    [InlineData(2, 64, TensorDType.BF16)]
    [InlineData(3, 64, TensorDType.Q8_0)]
    [InlineData(6, 64, TensorDType.Q4_0)]
    [InlineData(10, 64, TensorDType.Q4_0)]
    [InlineData(1, 256, TensorDType.Q4_K)]
    [InlineData(65, 64, TensorDType.F16)] // blocked GEMMs
    public void SwiGluMatMul_matches_the_gated_products(int m, int k, TensorDType dtype)
    {
        const int n = 37;
        var gateWeights = fixture.Tensor(Numerics.Random(n * k, seed: 20, scale: 3f), n, k, dtype);
        var upWeights = fixture.Tensor(Numerics.Random(n * k, seed: 21), n, k, dtype);
        var x = Numerics.Random(m * k, seed: 22);
        using var gate = _ilgpu.PrepareMatrix(gateWeights);
        using var up = _ilgpu.PrepareMatrix(upWeights);
        var gates = new float[m * n];
        var ups = new float[m * n];
        _ilgpu.MatMul(x, m, gate, gates);
        _ilgpu.MatMul(x, m, up, ups);
        var expected = gates.Select((g, i) => g / (1 + MathF.Exp(-g)) * ups[i]).ToArray();
        var actual = new float[m * n];
        _ilgpu.SwiGluMatMul(x, m, gate, up, actual);
        Numerics.AssertClose(expected, actual);
        Assert.Contains(expected, v => v < -1e-3f);
        if (dtype.IsQuantized())
            return;
        using var gateOnCpu = _cpu.PrepareMatrix(gateWeights);
        using var upOnCpu = _cpu.PrepareMatrix(upWeights);
        var onCpu = new float[m * n];
        _cpu.SwiGluMatMul(x, m, gateOnCpu, upOnCpu, onCpu);
        Numerics.AssertClose(onCpu, actual);
    }

    /// <summary>
    /// The attention's q, k and v products in one call: one GEMV launch where the three share a storage type and the rows
    /// are few, else three products; against the same device's products one at a time.
    /// </summary>
    [Theory]
    [InlineData(1, 45, TensorDType.F32, TensorDType.F32)]
    [InlineData(4, 268, TensorDType.F32, TensorDType.F32)]
    [InlineData(3, 268, TensorDType.F16, TensorDType.F16)]
    [InlineData(2, 64, TensorDType.BF16, TensorDType.BF16)]
    [InlineData(2, 64, TensorDType.Q8_0, TensorDType.Q8_0)]
    [InlineData(1, 256, TensorDType.Q4_K, TensorDType.Q4_K)]
    [InlineData(1, 256, TensorDType.Q4_K, TensorDType.Q6_K)] // values in another type, as in a Q4_K_M file
    [InlineData(6, 64, TensorDType.F16, TensorDType.F16)]
    [InlineData(9, 64, TensorDType.F16, TensorDType.F16)] // tiled GEMMs
    public void QkvMatMul_matches_the_three_products(int m, int k, TensorDType type, TensorDType valueType)
    {
        const int queryColumns = 24, kvColumns = 9;
        using var wq = _ilgpu.PrepareMatrix(fixture.Tensor(Numerics.Random(queryColumns * k, seed: 40), queryColumns, k, type));
        using var wk = _ilgpu.PrepareMatrix(fixture.Tensor(Numerics.Random(kvColumns * k, seed: 41), kvColumns, k, type));
        using var wv = _ilgpu.PrepareMatrix(fixture.Tensor(Numerics.Random(kvColumns * k, seed: 42), kvColumns, k, valueType));
        var x = Numerics.Random(m * k, seed: 43);
        var expected = new[] { new float[m * queryColumns], new float[m * kvColumns], new float[m * kvColumns] };
        _ilgpu.MatMul(x, m, wq, expected[0]);
        _ilgpu.MatMul(x, m, wk, expected[1]);
        _ilgpu.MatMul(x, m, wv, expected[2]);

        using var input = _ilgpu.UploadNew<float>(x);
        using var q = _ilgpu.Allocate<float>(m * queryColumns);
        using var keys = _ilgpu.Allocate<float>(m * kvColumns);
        using var values = _ilgpu.Allocate<float>(m * kvColumns);
        long launches = _ilgpu.Launches;
        _ilgpu.QkvMatMul(input.All, m, wq, q.All, wk, keys.All, wv, values.All);
        Assert.Equal(m <= MatMulKernels.GemvMaxRows && type == valueType ? 1 : 3, _ilgpu.Launches - launches);
        Numerics.AssertClose(expected[0], _ilgpu.ToArray(q.All), what: "q");
        Numerics.AssertClose(expected[1], _ilgpu.ToArray(keys.All), what: "k");
        Numerics.AssertClose(expected[2], _ilgpu.ToArray(values.All), what: "v");
    }

    /// <summary>
    /// The q/k/v and gated products given a norm: equal to <see cref="IComputeDevice.RmsNorm"/> and then the products,
    /// on both devices. On the ILGPU GEMV (up to 8 rows) the norm is folded in: one launch, no normalized rows written;
    /// over 8 rows it is a launch of its own before the GEMMs. Rows scaled far from 1 so that a missing factor shows.
    /// </summary>
    [Theory]
    [InlineData(1, 268, TensorDType.F32)]
    [InlineData(3, 45, TensorDType.F16)] // one weight per lane (K not a multiple of 4)
    [InlineData(8, 268, TensorDType.BF16)]
    [InlineData(2, 64, TensorDType.Q8_0)]
    [InlineData(11, 64, TensorDType.F16)] // the norm, then GEMMs
    public void Products_given_a_norm_match_the_norm_then_the_products(int m, int k, TensorDType dtype)
    {
        const int queryColumns = 24, kvColumns = 9, hidden = 29;
        var x = Numerics.Random(m * k, seed: 50, scale: 7f);
        var normWeight = Numerics.Random(k, seed: 51, scale: 2f);
        WeightTensor wqWeights = Tensor(queryColumns, 52), wkWeights = Tensor(kvColumns, 53), wvWeights = Tensor(kvColumns, 54);
        WeightTensor gateWeights = Tensor(hidden, 55), upWeights = Tensor(hidden, 56);
        foreach (IComputeDevice device in new IComputeDevice[] { _cpu, _ilgpu })
        {
            using var wq = device.PrepareMatrix(wqWeights);
            using var wk = device.PrepareMatrix(wkWeights);
            using var wv = device.PrepareMatrix(wvWeights);
            using var gate = device.PrepareMatrix(gateWeights);
            using var up = device.PrepareMatrix(upWeights);
            var normed = new float[x.Length];
            device.RmsNorm(x, normWeight, 1e-5f, normed);
            using var input = device.UploadNew<float>(x);
            using var weight = device.UploadNew<float>(normWeight);
            var norm = new RowNorm(weight.All, 1e-5f);

            using var separate = device.UploadNew<float>(normed);
            using var q = device.Allocate<float>(m * queryColumns);
            using var keys = device.Allocate<float>(m * kvColumns);
            using var values = device.Allocate<float>(m * kvColumns);
            device.QkvMatMul(separate.All, m, wq, q.All, wk, keys.All, wv, values.All);
            float[][] expected = [device.ToArray(q.All), device.ToArray(keys.All), device.ToArray(values.All)];
            long launches = _ilgpu.Launches;
            device.QkvMatMul(input.All, m, wq, q.All, wk, keys.All, wv, values.All, norm);
            if (device == _ilgpu)
                Assert.Equal(m <= MatMulKernels.GemvMaxRows ? 1 : 4, _ilgpu.Launches - launches);
            Numerics.AssertClose(expected[0], device.ToArray(q.All), what: $"{device.Description}: q");
            Numerics.AssertClose(expected[1], device.ToArray(keys.All), what: $"{device.Description}: k");
            Numerics.AssertClose(expected[2], device.ToArray(values.All), what: $"{device.Description}: v");

            using var gated = device.Allocate<float>(m * hidden);
            device.SwiGluMatMul(separate.All, m, gate, up, gated.All);
            var expectedGated = device.ToArray(gated.All);
            launches = _ilgpu.Launches;
            device.SwiGluMatMul(input.All, m, gate, up, gated.All, norm);
            if (device == _ilgpu)
                Assert.Equal(m <= MatMulKernels.GemvMaxRows ? 1 : 4, _ilgpu.Launches - launches);
            Numerics.AssertClose(expectedGated, device.ToArray(gated.All), what: $"{device.Description}: gated");
        }

        WeightTensor Tensor(int rows, int seed) => fixture.Tensor(Numerics.Random(rows * k, seed: seed), rows, k, dtype);
    }

    /// <summary>y += x · wᵀ, the residual connection, through the GEMV (few rows) and both GEMMs, on both devices.</summary>
    [Theory]
    [InlineData(1, TensorDType.F32)]
    [InlineData(3, TensorDType.F16)]
    [InlineData(6, TensorDType.F32)]
    [InlineData(2, TensorDType.Q8_0)]
    [InlineData(66, TensorDType.F16)]
    public void MatMulAdd_adds_the_product_to_y(int m, TensorDType dtype)
    {
        const int n = 29, k = 64;
        var weight = fixture.Tensor(Numerics.Random(n * k, seed: 30), n, k, dtype);
        var x = Numerics.Random(m * k, seed: 31);
        var residual = Numerics.Random(m * n, seed: 32, scale: 4f);
        foreach (IComputeDevice device in new IComputeDevice[] { _cpu, _ilgpu })
        {
            using var matrix = device.PrepareMatrix(weight);
            var product = new float[m * n];
            device.MatMul(x, m, matrix, product);
            var sums = residual.ToArray();
            device.MatMulAdd(x, m, matrix, sums);
            Numerics.AssertClose(residual.Select((r, i) => r + product[i]).ToArray(), sums, what: device.Description);
        }
    }

    [Fact]
    public void AddBias_adds_to_every_row()
    {
        var expected = Numerics.Random(3 * 13, seed: 40);
        var actual = expected.ToArray();
        var bias = Numerics.Random(13, seed: 41);
        _cpu.AddBias(expected, bias);
        _ilgpu.AddBias(actual, bias);
        Numerics.AssertClose(expected, actual);
    }

    [Fact]
    public void Description_names_the_accelerator()
    {
        Assert.Equal(IlgpuTestTarget.Target, _ilgpu.Target);
        Assert.StartsWith(IlgpuTestTarget.Target == IlgpuTarget.Cpu ? "ilgpu cpu accelerator" : "ilgpu cuda", _ilgpu.Description);
        Assert.Contains("warp 32", _ilgpu.Description);
    }

    [Fact]
    public void Cuda_target_fails_fast_without_a_cuda_device()
    {
        var devices = IlgpuDevice.ListDevices();
        Assert.Contains(devices, d => d.StartsWith("cpu accelerator"));
        if (devices.Any(d => d.StartsWith("cuda")))
        {
            // On a GPU machine the same call must give a CUDA device, not throw.
            using var cuda = IlgpuDevice.Create(IlgpuTarget.Cuda);
            Assert.StartsWith("ilgpu cuda", cuda.Description);
            return;
        }
        var error = Assert.Throws<InvalidOperationException>(() => IlgpuDevice.Create(IlgpuTarget.Cuda));
        Assert.Contains("no CUDA device", error.Message);
        Assert.Contains("cpu accelerator", error.Message);
    }

    /// <summary>
    /// <c>cuda:N</c> opens the CUDA device numbered N and a number past the last is refused with the devices found; on
    /// a machine without CUDA both refuse as <c>cuda</c> does. (gpu-check runs this on a GPU.)
    /// </summary>
    [Fact]
    public void A_numbered_cuda_device_is_that_device_and_one_past_the_last_is_refused_with_the_list()
    {
        int count = IlgpuDevice.ListDevices().Count(d => d.StartsWith("cuda"));
        if (count > 0)
        {
            using var first = ComputeDevices.Create("cuda");
            using var numbered = ComputeDevices.Create($"cuda:{count - 1}");
            Assert.StartsWith("ilgpu cuda", numbered.Description);
            if (count == 1) Assert.Equal(first.Description, numbered.Description);
        }
        var error = Assert.Throws<InvalidOperationException>(() => ComputeDevices.Create($"cuda:{count}"));
        Assert.Contains(count > 0 ? $"there is no CUDA device {count}: ILGPU found {count} (cuda: " : "ILGPU found no CUDA device", error.Message);
        if (count > 0)
        {
            Assert.Contains($"(--device cuda:{count - 1}))", error.Message);
            Assert.EndsWith($"(--device cuda:{count - 1})", IlgpuDevice.ListDevices().Last(d => d.StartsWith("cuda")));
        }
    }

    [Theory]
    [InlineData("cuda", 0)]
    [InlineData("cuda:0", 0)]
    [InlineData("cuda:7", 7)]
    [InlineData("cuda:", null)]
    [InlineData("cuda:-1", null)]
    [InlineData("cuda:+1", null)]
    [InlineData("cuda: 1", null)]
    [InlineData("cuda:one", null)]
    [InlineData("cuda:99999999999", null)]
    [InlineData("CUDA:1", null)]
    [InlineData("ilgpu-cpu", null)]
    public void A_device_name_picks_the_cuda_device_it_numbers(string name, int? index)
    {
        Assert.Equal(index, ComputeDevices.CudaIndex(name));
        Assert.Equal(index is not null || name == "ilgpu-cpu", ComputeDevices.IsKnown(name));
        if (!ComputeDevices.IsKnown(name))
            Assert.Contains($"unknown device '{name}' (expected cpu, ilgpu-cpu, cuda, or cuda:N", Assert.Throws<ArgumentException>(() => ComputeDevices.Create(name)).Message);
    }

    [Fact]
    public void Local_silos_asked_for_cuda_take_one_gpu_each_and_any_other_device_as_given()
    {
        string OfThreeSilos(string device) => string.Join(' ', Enumerable.Range(0, 3).Select(i => ComputeDevices.OfLocalSilo(device, i)));
        Assert.Equal("cuda:0 cuda:1 cuda:2", OfThreeSilos("cuda"));
        Assert.Equal("cuda:1 cuda:1 cuda:1", OfThreeSilos("cuda:1"));
        Assert.Equal("cpu cpu cpu", OfThreeSilos("cpu"));
    }

    [Fact]
    public void MatMul_rejects_a_matrix_of_another_device()
    {
        using var onCpu = _cpu.PrepareMatrix(fixture.Tensor(Numerics.Random(4, seed: 1), 2, 2, TensorDType.F32));
        Assert.Throws<ArgumentException>(() => _ilgpu.MatMul(new float[2], 1, onCpu, new float[2]));
    }

    internal static ModelConfig TinyConfig(int headDim, int heads, int kvHeads) => new()
    {
        Architecture = "test",
        Dim = heads * headDim,
        HiddenDim = 8,
        Layers = 1,
        Heads = heads,
        KvHeads = kvHeads,
        HeadDim = headDim,
        VocabSize = 8,
        MaxSeqLen = 8192,
    };
}
