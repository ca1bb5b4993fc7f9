using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Kernels.Ilgpu;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>
/// <see cref="IlgpuDevice.Attention"/> against <see cref="CpuDevice"/> on its kernels: asked for per-key totals it runs
/// the kernel that keeps every weight; otherwise the tiled one (for heads up to
/// <see cref="AttentionKernels.MaxTiledHeadDim"/> wide), or, for fewer rows than a query tile over more keys than a
/// split (decode), the split-key kernel and its combination. The shapes cross several key tiles
/// (<see cref="AttentionKernels.KeyTile"/>), query tiles (<see cref="AttentionKernels.QueryTile"/>) and splits
/// (<see cref="AttentionKernels.SplitKeys"/>), with the last of each partial.
/// </summary>
public sealed class IlgpuAttentionTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    private readonly IlgpuDevice _ilgpu = fixture.Ilgpu;
    private readonly CpuDevice _cpu = fixture.Cpu;

    private static int[] Range(int start, int count) => Enumerable.Range(start, count).ToArray();

    public static TheoryData<string, int[], int[], int, int, int> Cases => new()
    {
        // Prefill after a cache: 19 queries (three query tiles) over 75 keys (three key tiles), each query one more key.
        { "prefill", Range(56, 19), Range(0, 75), 4, 2, 8 },
        { "prefill, one kv head", Range(56, 19), Range(0, 75), 4, 1, 8 },
        { "prefill, head dim 1", Range(56, 19), Range(0, 75), 4, 2, 1 },
        { "prefill, head dim 64", Range(56, 19), Range(0, 75), 4, 2, 64 },
        { "prefill, head dim 96", Range(60, 11), Range(0, 71), 2, 1, 96 },
        { "prefill, head dim 128", Range(60, 11), Range(0, 71), 2, 1, 128 },
        // Keys at even positions only (as an FTP block that skipped tokens): the queries of one tile see 1 to all 75
        // keys, so rows of a tile stop after different key tiles, some inside a tile.
        { "gaps", [1, 3, 10, 50, 51, 90, 120, 148, 149, 160], Range(0, 75).Select(j => 2 * j).ToArray(), 4, 2, 8 },
        { "gaps, one kv head", [1, 3, 10, 50, 51, 90, 120, 148, 149, 160], Range(0, 75).Select(j => 2 * j).ToArray(), 4, 1, 64 },
        // Decode: one query over seven key tiles, the last of eight keys; without totals, four key splits, the last of 8.
        { "decode", [199], Range(0, 200), 4, 1, 64 },
        { "decode, head dim 8", [199], Range(0, 200), 4, 2, 8 },
        { "decode, head dim 128", [199], Range(0, 200), 2, 1, 128 },
        // A query that sees half the cache: its last splits see no key, one sees part of its keys.
        { "decode, half the cache visible", [99], Range(0, 200), 4, 2, 64 },
        // Three rows of a sequence over a long cache (a short chunk), and keys with gaps.
        { "three rows over a long cache", [197, 198, 199], Range(0, 200), 4, 2, 32 },
        { "decode over keys with gaps", [299], Range(0, 150).Select(j => 2 * j).ToArray(), 4, 2, 16 },
        // Wider than the tiled kernel's shared tiles: both calls run the kernel that keeps the weights.
        { "head dim 160", [37, 38, 39], Range(0, 40), 2, 1, 160 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Attention_matches_cpu_with_and_without_key_totals(string name, int[] queryPositions, int[] keyPositions,
        int heads, int kvHeads, int headDim)
    {
        int nq = queryPositions.Length, nk = keyPositions.Length;
        var q = Numerics.Random(nq * heads * headDim, seed: 50, scale: 2f);
        var keys = Numerics.Random(nk * kvHeads * headDim, seed: 51, scale: 2f);
        var values = Numerics.Random(nk * kvHeads * headDim, seed: 52);
        var expected = new float[nq * heads * headDim];
        var expectedTotals = new float[nk];
        _cpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, expected, expectedTotals);

        var withTotals = new float[expected.Length];
        var totals = new float[nk];
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, withTotals, totals);
        Numerics.AssertClose(expected, withTotals, what: $"{name}: attention output with key totals");
        Numerics.AssertClose(expectedTotals, totals, what: $"{name}: per-key attention totals");

        var withoutTotals = new float[expected.Length];
        long launches = _ilgpu.Launches;
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, withoutTotals, Span<float>.Empty);
        Numerics.AssertClose(expected, withoutTotals, what: $"{name}: attention output without key totals");
        // The split-key path is two launches (the splits, their combination); the others one.
        bool splits = nq < AttentionKernels.QueryTile && nk > AttentionKernels.SplitKeys && headDim <= AttentionKernels.MaxTiledHeadDim;
        Assert.Equal(splits ? 2 : 1, _ilgpu.Launches - launches);
    }

    [Fact]
    public void A_decoded_row_that_sees_no_key_gets_zeros_from_the_split_key_kernel()
    {
        // 100 keys from position 40 on: the first row (position 3) sees none of them, over two splits.
        const int heads = 2, kvHeads = 1, headDim = 8, nk = 100;
        var q = Numerics.Random(2 * heads * headDim, seed: 70);
        var keys = Numerics.Random(nk * kvHeads * headDim, seed: 71);
        var values = Numerics.Random(nk * kvHeads * headDim, seed: 72);
        var output = Enumerable.Repeat(float.NaN, q.Length).ToArray();
        var reference = new float[q.Length];
        _ilgpu.Attention(q, [3, 150], keys, values, Range(40, nk), heads, kvHeads, headDim, output, Span<float>.Empty);
        _ilgpu.Attention(q, [3, 150], keys, values, Range(40, nk), heads, kvHeads, headDim, reference, new float[nk]);
        Assert.All(output.Take(heads * headDim), v => Assert.Equal(0f, v));
        Numerics.AssertClose(reference, output);
    }

    [Fact]
    public void Attention_with_scores_that_rise_across_key_tiles_stays_finite()
    {
        // Head dim 1, so no scaling: key j scores 10·j, up to 740. Every key tile raises the max by 320 and makes
        // the weights gathered so far vanish (e⁻³²⁰ is 0 in float32), so nothing overflows only if they are rescaled.
        const int nk = 75;
        var keys = Range(0, nk).Select(j => 10f * j).ToArray();
        var values = Range(0, nk).Select(j => (float)j).ToArray();
        var expected = new float[1];
        var actual = new float[1];
        _cpu.Attention([1f], [nk - 1], keys, values, Range(0, nk), 1, 1, 1, expected, Span<float>.Empty);
        _ilgpu.Attention([1f], [nk - 1], keys, values, Range(0, nk), 1, 1, 1, actual, Span<float>.Empty);
        Assert.True(float.IsFinite(actual[0]));
        Numerics.AssertClose(expected, actual);
    }

    [Fact]
    public void Attention_with_large_scores_stays_finite_without_key_totals()
    {
        // Scores 1000 and 999 (head dim 1, no scaling) weigh like 1 and 0: output 1 / (1 + e⁻¹).
        var output = new float[1];
        _ilgpu.Attention([1000f], [1], [1f, 0.999f], [1f, 0f], [0, 1], 1, 1, 1, output, Span<float>.Empty);
        Assert.Equal(1 / (1 + MathF.Exp(-1)), output[0], 4);
    }

    [Fact]
    public void A_query_that_sees_no_key_gets_zeros_from_both_kernels_and_the_cpu()
    {
        // Keys start at position 40: the first query sees none of them, the second all 40.
        const int heads = 2, kvHeads = 1, headDim = 8, nk = 40;
        int[] queryPositions = [3, 90];
        var q = Numerics.Random(2 * heads * headDim, seed: 60);
        var keys = Numerics.Random(nk * kvHeads * headDim, seed: 61);
        var values = Numerics.Random(nk * kvHeads * headDim, seed: 62);
        var keyPositions = Range(40, nk);
        var withTotals = new float[q.Length];
        var totals = new float[nk];
        var withoutTotals = Enumerable.Repeat(float.NaN, q.Length).ToArray();
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, withTotals, totals);
        _ilgpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, withoutTotals, Span<float>.Empty);

        int row = heads * headDim;
        Assert.All(withTotals.Take(row), v => Assert.Equal(0f, v));
        Assert.All(withoutTotals.Take(row), v => Assert.Equal(0f, v));
        Numerics.AssertClose(withTotals.AsSpan(row), withoutTotals.AsSpan(row), what: "the query that sees every key");
        // Only the second query's heads spread weight over the keys.
        Assert.Equal(heads, totals.Sum(), 4);

        var onCpu = Enumerable.Repeat(float.NaN, q.Length).ToArray();
        var cpuTotals = new float[nk];
        _cpu.Attention(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, onCpu, cpuTotals);
        Numerics.AssertClose(onCpu, withTotals, what: "the cpu backend's output");
        Numerics.AssertClose(cpuTotals, totals, what: "the cpu backend's key totals");
    }

    /// <summary>
    /// A microbatch of sequences, each (rows, cache entries): three decoded rows of short and long caches, a chunk of nine
    /// rows (more than a query tile, so it runs alone), then ten more decode sequences, over two groups of at most
    /// eight. Each cache's keys sit at positions with gaps (an FTP block that skipped tokens), and a sequence's rows are
    /// its cache's last entries.
    /// </summary>
    private static readonly (int Rows, int Entries)[] Microbatch =
        [(1, 5), (2, 70), (1, 200), (9, 40), (1, 1), (3, 130), (1, 64), (1, 65), (1, 9), (2, 17), (1, 300), (1, 3), (1, 129), (1, 2)];

    [Fact]
    public void Attention_of_several_sequences_over_their_own_caches_matches_the_cpu_in_a_launch_per_eight()
    {
        const int heads = 4, kvHeads = 2, headDim = 16;
        int width = heads * headDim, kvWidth = kvHeads * headDim, rows = Microbatch.Sum(s => s.Rows);
        var q = Numerics.Random(rows * width, seed: 60, scale: 2f);
        var queryPositions = new int[rows];
        var expected = new float[rows * width];
        var buffers = new List<DeviceBuffer<float>>();
        var positionBuffers = new List<DeviceBuffer<int>>();
        var sequences = new List<SequenceCache>();
        for (int i = 0, firstRow = 0; i < Microbatch.Length; firstRow += Microbatch[i].Rows, i++)
        {
            var (count, entries) = Microbatch[i];
            var keys = Numerics.Random(entries * kvWidth, seed: 61 + i, scale: 2f);
            var values = Numerics.Random(entries * kvWidth, seed: 91 + i);
            var keyPositions = Range(0, entries).Select(j => 3 * j + i % 2).ToArray();
            keyPositions.AsSpan(entries - count).CopyTo(queryPositions.AsSpan(firstRow));
            _cpu.Attention(q.AsSpan(firstRow * width, count * width), queryPositions.AsSpan(firstRow, count), keys, values, keyPositions,
                heads, kvHeads, headDim, expected.AsSpan(firstRow * width, count * width), Span<float>.Empty);
            DeviceBuffer<float> keyBuffer = _ilgpu.UploadNew<float>(keys), valueBuffer = _ilgpu.UploadNew<float>(values);
            var positionBuffer = _ilgpu.UploadNew<int>(keyPositions);
            buffers.AddRange([keyBuffer, valueBuffer]);
            positionBuffers.Add(positionBuffer);
            sequences.Add(new SequenceCache(firstRow, count, keyBuffer.All, valueBuffer.All, positionBuffer.All));
        }
        try
        {
            using var qBuffer = _ilgpu.UploadNew<float>(q);
            using var queryPositionBuffer = _ilgpu.UploadNew<int>(queryPositions);
            using var output = _ilgpu.Allocate<float>(rows * width);
            long before = _ilgpu.Launches;
            _ilgpu.Attention(qBuffer.All, queryPositionBuffer.All, sequences, heads, kvHeads, headDim, output.All);

            // Two launches (splits, combination) for the first three sequences, one for the chunk, two for each group of
            // the ten after it.
            Assert.Equal(2 + 1 + 2 * 2, _ilgpu.Launches - before);
            Numerics.AssertClose(expected, _ilgpu.ToArray(output.All), what: "attention of several sequences");
        }
        finally
        {
            buffers.ForEach(b => b.Dispose());
            positionBuffers.ForEach(b => b.Dispose());
        }
    }

    [Fact]
    public void Appends_of_several_sequences_land_in_each_cache_after_its_entries_in_a_launch_per_eight()
    {
        const int width = 6, held = 4;
        int rows = Microbatch.Sum(s => s.Rows);
        var keys = Numerics.Random(rows * width, seed: 70);
        var values = Numerics.Random(rows * width, seed: 71);
        var positions = Range(100, rows);
        using var keyRows = _ilgpu.UploadNew<float>(keys);
        using var valueRows = _ilgpu.UploadNew<float>(values);
        using var rowPositions = _ilgpu.UploadNew<int>(positions);
        // Each cache already holds `held` entries (left as they are) and has room for its rows after them.
        var caches = Microbatch.Select(s => (Keys: _ilgpu.Allocate<float>((held + s.Rows) * width), Values: _ilgpu.Allocate<float>((held + s.Rows) * width),
            Positions: _ilgpu.Allocate<int>(held + s.Rows))).ToArray();
        try
        {
            var rooms = new List<SequenceCache>();
            for (int i = 0, firstRow = 0; i < Microbatch.Length; firstRow += Microbatch[i].Rows, i++)
            {
                int count = Microbatch[i].Rows;
                _ilgpu.Upload(Enumerable.Repeat(-1f, held * width).ToArray(), caches[i].Keys.All);
                rooms.Add(new SequenceCache(firstRow, count, caches[i].Keys.All.Slice(held * width), caches[i].Values.All.Slice(held * width),
                    caches[i].Positions.All.Slice(held)));
            }
            long before = _ilgpu.Launches;
            _ilgpu.AppendToCaches(keyRows.All, valueRows.All, rowPositions.All, rooms);

            Assert.Equal(2, _ilgpu.Launches - before); // 14 sequences: a group of eight, then six
            for (int i = 0, firstRow = 0; i < Microbatch.Length; firstRow += Microbatch[i].Rows, i++)
            {
                int count = Microbatch[i].Rows;
                var cacheKeys = _ilgpu.ToArray(caches[i].Keys.All);
                Assert.All(cacheKeys[..(held * width)], k => Assert.Equal(-1f, k));
                Assert.Equal(keys.AsSpan(firstRow * width, count * width).ToArray(), cacheKeys[(held * width)..]);
                Assert.Equal(values.AsSpan(firstRow * width, count * width).ToArray(), _ilgpu.ToArray(caches[i].Values.All)[(held * width)..]);
                Assert.Equal(positions.AsSpan(firstRow, count).ToArray(), _ilgpu.ToArray(caches[i].Positions.All)[held..]);
            }
        }
        finally
        {
            foreach (var (k, v, p) in caches)
            {
                k.Dispose();
                v.Dispose();
                p.Dispose();
            }
        }
    }
}
