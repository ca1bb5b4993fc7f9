using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Inference;

/// <summary>
/// The forward pass of one slice of a model on one device: embedding (first stage), blocks
/// [a, b), final norm and LM head (last stage). Hidden rows are [rows, dim], one per token.
/// Not thread-safe: a stage serves one call at a time.
/// </summary>
public sealed class TransformerStage : IDisposable
{
    private readonly Scratch _scratch;
    private readonly HostScratch _hostScratch = new();

    /// <summary>A block's sequences: each one's cache of the block, its room for the rows and its entries (reused block to block).</summary>
    private readonly List<LayerKvCache> _blockCaches = [];
    private readonly List<SequenceCache> _blockRooms = [], _blockEntries = [];
    private readonly MicrobatchUpload _upload;

    public TransformerStage(ModelSlice slice, IComputeDevice device)
    {
        Slice = slice;
        Device = device;
        Rope = new RopeTable(slice.Config);
        _scratch = new Scratch(device);
        _upload = new MicrobatchUpload(device);
    }

    public ModelSlice Slice { get; }
    public IComputeDevice Device { get; }
    public RopeTable Rope { get; }
    public ModelConfig Config => Slice.Config;

    /// <summary>Opens a model file or directory and loads the given slice (the whole model by default).</summary>
    public static TransformerStage Load(string path, IComputeDevice device, SliceSpec? slice = null, TensorDType? storage = null)
    {
        using var checkpoint = Checkpoint.Open(path);
        return new TransformerStage(ModelSlice.Load(checkpoint, slice ?? SliceSpec.Whole(checkpoint.Config), device, storage), device);
    }

    /// <summary>A new sequence's cache, on this stage's device; dispose it when the sequence is done.</summary>
    /// <param name="length">The sequence's tokens at most, when known ahead (see <see cref="KvCache"/>); 0: unknown.</param>
    public KvCache NewCache(int length = 0) => new(Slice.Spec, Config.KvDim, Device, length);

    public void Embed(ReadOnlySpan<int> tokens, Span<float> hidden)
    {
        var table = Slice.Embedding ?? throw new InvalidOperationException("this slice holds no embedding");
        for (int i = 0; i < tokens.Length; i++)
            table.CopyRow(tokens[i], hidden.Slice(i * Config.Dim, Config.Dim));
    }

    /// <summary>
    /// Runs the slice's blocks over <paramref name="rows"/>, updating <paramref name="hidden"/> in place.
    /// Rows of one sequence must be contiguous and in increasing position order.
    /// </summary>
    /// <param name="computeRows">
    /// FTP: per block of the slice, the sorted indices of the rows that block computes, or null for
    /// every row. A row a block skips is neither query nor key/value there, gets no KV-cache entry,
    /// and passes through unchanged.
    /// </param>
    /// <param name="attentionScores">Empty (the default, which costs nothing), or [k, rows] to receive each
    /// row's attention score in each of the first k blocks: see <see cref="ForwardRouted"/>.</param>
    public void Forward(ReadOnlySpan<TokenRow> rows, Span<float> hidden, IReadOnlyList<int[]?>? computeRows = null,
        Span<float> attentionScores = default)
    {
        CheckPlan(computeRows);
        var x = ForwardOnDevice(rows, hidden, computeRows is null ? EveryRow : b => computeRows[b],
            computeRows is null ? [] : DistinctSubsets(computeRows), attentionScores);
        if (!x.IsEmpty) Device.Download(x, hidden[..x.Length]);
    }

    /// <summary>
    /// <see cref="Forward"/> through to the logits, for the last stage: after the blocks, the final norm and the LM head
    /// run on the device over the rows <paramref name="logitRows"/> (sorted, distinct), <see cref="LogitGroupRows"/> at
    /// a time, and only their logits come back: one upload and, for up to that many rows, one download per call.
    /// <paramref name="onLogits"/>(first, logits) gets [count, vocab] for logitRows[first .. first + count), valid
    /// during the call. <paramref name="hidden"/> is not updated.
    /// </summary>
    public void ForwardToLogits(ReadOnlySpan<TokenRow> rows, ReadOnlySpan<float> hidden, IReadOnlyList<int[]?>? computeRows,
        int[] logitRows, LogitsReady onLogits)
    {
        var head = Slice.LmHead ?? throw new InvalidOperationException("this slice holds no LM head");
        CheckPlan(computeRows);
        if (rows.IsEmpty && logitRows.Length > 0)
            throw new ArgumentException($"logits of {logitRows.Length} rows asked of a microbatch of none");
        // The logit rows go up with the microbatch, as one more subset of its rows.
        int[][] subsets = [.. computeRows is null ? [] : DistinctSubsets(computeRows), logitRows];
        var x = ForwardOnDevice(rows, hidden, computeRows is null ? EveryRow : b => computeRows[b], subsets, default);
        if (logitRows.Length == 0)
            return;
        var (indices, _) = _upload.Subset(logitRows, rows);
        // Sorted and distinct, so as many as the rows means every row: the head reads them where they are.
        bool everyRow = logitRows.Length == rows.Length;
        int dim = Config.Dim, vocab = head.Rows, group = Math.Min(LogitGroupRows, logitRows.Length);
        var logits = _hostScratch.Get(HostScratch.Logits, group * vocab);
        for (int first = 0; first < logitRows.Length; first += group)
        {
            int count = Math.Min(group, logitRows.Length - first);
            var input = everyRow ? x.Slice(first * dim, count * dim) : _scratch.Get(Scratch.Input, count * dim);
            if (!everyRow) Device.GatherRows(x, indices.Slice(first, count), dim, input);
            Head(input, count, logits[..(count * vocab)]);
            onLogits(first, logits[..(count * vocab)]);
        }
    }

    /// <summary>Rows whose logits <see cref="ForwardToLogits"/> computes at once: bounds its logits on the device and the host.</summary>
    public const int LogitGroupRows = 64;

    /// <summary>Takes the logits of rows [first, first + count) of a <see cref="ForwardToLogits"/> call's logit rows.</summary>
    public delegate void LogitsReady(int first, ReadOnlySpan<float> logits);

    private void CheckPlan(IReadOnlyList<int[]?>? computeRows)
    {
        if (computeRows is not null && computeRows.Count != Slice.Blocks.Count)
            throw new ArgumentException($"computeRows has {computeRows.Count} entries for {Slice.Blocks.Count} blocks");
    }

    /// <summary>The different row subsets of a plan, each once: they go to the device with the rows.</summary>
    private static int[][] DistinctSubsets(IReadOnlyList<int[]?> computeRows)
    {
        var distinct = new List<int[]>();
        foreach (var subset in computeRows)
            if (subset is { Length: > 0 } && !distinct.Exists(d => d.AsSpan().SequenceEqual(subset)))
                distinct.Add(subset);
        return [.. distinct];
    }

    private static readonly Func<int, int[]?> EveryRow = _ => null;

    /// <summary>
    /// <see cref="Forward"/> with each block's rows chosen just before it runs, so that a router can use
    /// what the blocks before it reported: <paramref name="chooseRows"/>(b) is called for b = 0, 1, ... in
    /// order (b indexes the slice's blocks), after block b - 1 has written its attention scores, and
    /// returns the sorted rows block b computes, or null for every row.
    /// </summary>
    /// <param name="attentionScores">
    /// Empty, or [k, rows] for the slice's first k blocks (1 ≤ k ≤ blocks; later blocks compute none):
    /// entry [b * rows + r] receives row r's attention score in block b — the attention the token received
    /// there, averaged over heads and over the queries of this call that could see it (the rows of its
    /// sequence at or after it that block b computed) — or NaN where block b skipped row r. Asking for
    /// scores does not change the hidden rows.
    /// </param>
    public void ForwardRouted(ReadOnlySpan<TokenRow> rows, Span<float> hidden, Func<int, int[]?> chooseRows,
        Span<float> attentionScores = default)
    {
        var x = ForwardOnDevice(rows, hidden, chooseRows, [], attentionScores);
        if (!x.IsEmpty) Device.Download(x, hidden[..x.Length]);
    }

    /// <summary>
    /// The forward pass over the device: the rows go up once (with <paramref name="plannedSubsets"/>, the row
    /// subsets known before the blocks run) and every block runs on the device's copy, which is returned (empty for no rows).
    /// </summary>
    private DeviceSpan<float> ForwardOnDevice(ReadOnlySpan<TokenRow> rows, ReadOnlySpan<float> hidden, Func<int, int[]?> chooseRows,
        IReadOnlyList<int[]> plannedSubsets, Span<float> attentionScores)
    {
        CheckRowOrder(rows);
        int dim = Config.Dim, n = rows.Length, blocks = Slice.Blocks.Count;
        int scoredBlocks = n == 0 ? 0 : attentionScores.Length / n;
        if (attentionScores.Length != scoredBlocks * n || scoredBlocks > blocks)
            throw new ArgumentException($"attentionScores has {attentionScores.Length} entries: not whole rows of {n} for at most {blocks} blocks");
        if (hidden.Length < n * dim)
            throw new ArgumentException($"hidden has {hidden.Length} floats for {n} rows of {dim}");
        if (n == 0)
            return default;

        _upload.Upload(rows, hidden[..(n * dim)], plannedSubsets);
        var x = _upload.Hidden;
        // The subset whose rows are gathered into scratch. Consecutive blocks that compute the same rows (a
        // one-pass plan's stage segment, a uniform schedule) run on the gathered rows one after another,
        // which are scattered back only when a block needs others.
        int[]? gathered = null;
        TokenRow[] gatheredRows = [];
        DeviceSpan<int> gatheredIndices = default, gatheredPositions = default;
        for (int b = 0; b < blocks; b++)
        {
            var subset = chooseRows(b);
            var blockScores = b < scoredBlocks ? attentionScores.Slice(b * n, n) : Span<float>.Empty;
            if (gathered is not null && (subset is null || !subset.AsSpan().SequenceEqual(gathered)))
            {
                Device.ScatterRows(_scratch.Get(Scratch.Gathered, gathered.Length * dim), gatheredIndices, dim, x);
                gathered = null;
            }
            if (subset is null)
            {
                RunBlock(Slice.Blocks[b], rows, _upload.Positions, x, blockScores);
                continue;
            }
            blockScores.Fill(float.NaN);
            if (subset.Length == 0) continue;
            if (gathered is null)
            {
                (gatheredIndices, gatheredPositions) = _upload.Subset(subset, rows);
                gatheredRows = new TokenRow[subset.Length];
                for (int i = 0; i < subset.Length; i++) gatheredRows[i] = rows[subset[i]];
                Device.GatherRows(x, gatheredIndices, dim, _scratch.Get(Scratch.Gathered, subset.Length * dim));
                gathered = subset;
            }
            var subScores = blockScores.IsEmpty ? Span<float>.Empty : _hostScratch.Get(HostScratch.GatheredScores, subset.Length);
            RunBlock(Slice.Blocks[b], gatheredRows, gatheredPositions, _scratch.Get(Scratch.Gathered, subset.Length * dim), subScores);
            for (int i = 0; i < subScores.Length; i++)
                blockScores[subset[i]] = subScores[i];
        }
        if (gathered is not null) Device.ScatterRows(_scratch.Get(Scratch.Gathered, gathered.Length * dim), gatheredIndices, dim, x);
        return x;
    }

    /// <summary>Final norm and LM head: logits [rows, vocab] for the given hidden rows (one upload, one download).</summary>
    public void Logits(ReadOnlySpan<float> hidden, int rows, Span<float> logits)
    {
        var head = Slice.LmHead ?? throw new InvalidOperationException("this slice holds no LM head");
        int dim = Config.Dim, vocab = head.Rows;
        if (rows < 0 || hidden.Length < rows * dim || logits.Length < (long)rows * vocab)
            throw new ArgumentException($"logits of {rows} rows: hidden has {hidden.Length} floats for rows of {dim}, logits {logits.Length} for rows of {vocab}");
        if (rows == 0)
            return;
        var input = _scratch.Get(Scratch.Input, rows * dim);
        Device.Upload(hidden[..(rows * dim)], input);
        Head(input, rows, logits[..(rows * vocab)]);
    }

    /// <summary>
    /// Final norm and LM head of the rows <paramref name="logitRows"/> of host hidden rows [rows, dim] (a microbatch a
    /// router has already been through), handed over as <see cref="ForwardToLogits"/> does, a group at a time.
    /// </summary>
    public void Logits(ReadOnlySpan<float> hidden, int[] logitRows, LogitsReady onLogits)
    {
        var head = Slice.LmHead ?? throw new InvalidOperationException("this slice holds no LM head");
        int dim = Config.Dim, vocab = head.Rows, group = Math.Min(LogitGroupRows, logitRows.Length);
        var gathered = _hostScratch.Get(HostScratch.GatheredRows, group * dim);
        var logits = _hostScratch.Get(HostScratch.Logits, group * vocab);
        for (int first = 0; first < logitRows.Length; first += group)
        {
            int count = Math.Min(group, logitRows.Length - first);
            for (int j = 0; j < count; j++)
                hidden.Slice(logitRows[first + j] * dim, dim).CopyTo(gathered.Slice(j * dim, dim));
            Logits(gathered, count, logits);
            onLogits(first, logits[..(count * vocab)]);
        }
    }

    /// <summary>Final norm and LM head of hidden rows on the device, the logits downloaded.</summary>
    private void Head(DeviceSpan<float> input, int rows, Span<float> logits)
    {
        var normed = _scratch.Get(Scratch.Normed, rows * Config.Dim);
        var output = _scratch.Get(Scratch.Logits, logits.Length);
        Device.RmsNorm(input, Slice.FinalNorm!.All, Config.RmsNormEps, normed);
        Device.MatMul(normed, rows, Slice.LmHead!, output);
        Device.Download(output, logits);
    }

    /// <param name="rowPositions">The rows' positions on the device.</param>
    /// <param name="x">The rows' hidden states on the device, updated in place.</param>
    /// <param name="scores">Empty, or one entry per row for its attention score (see <see cref="ForwardRouted"/>).</param>
    private void RunBlock(BlockWeights w, ReadOnlySpan<TokenRow> rows, DeviceSpan<int> rowPositions, DeviceSpan<float> x, Span<float> scores)
    {
        var c = Config;
        int n = rows.Length;
        var q = _scratch.Get(Scratch.Query, n * c.QueryDim);
        var k = _scratch.Get(Scratch.Key, n * c.KvDim);
        var v = _scratch.Get(Scratch.Value, n * c.KvDim);
        var attended = _scratch.Get(Scratch.Attended, n * c.QueryDim);
        var gated = _scratch.Get(Scratch.Gated, n * c.HiddenDim);
        var positions = _hostScratch.GetPositions(n);
        int maxPosition = 0;
        for (int i = 0; i < n; i++) maxPosition = Math.Max(maxPosition, positions[i] = rows[i].Position);

        // Attention: x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
        Device.QkvMatMul(x, n, w.Query, q, w.Key, k, w.Value, v, new RowNorm(w.AttentionNorm.All, c.RmsNormEps));
        if (w.QueryBias is not null) Device.AddBias(q, w.QueryBias.All);
        if (w.KeyBias is not null) Device.AddBias(k, w.KeyBias.All);
        if (w.ValueBias is not null) Device.AddBias(v, w.ValueBias.All);
        Device.Rope(q, c.Heads, k, c.KvHeads, rowPositions, maxPosition, Rope);
        // Each sequence's rows are consecutive; its keys and values join its cache, all sequences' in one operation.
        _blockCaches.Clear();
        _blockRooms.Clear();
        for (int start = 0, end; start < n; start = end)
        {
            for (end = start + 1; end < n && rows[end].Cache == rows[start].Cache; end++)
            {
            }
            var cache = rows[start].Cache.Layer(w.Layer);
            _blockCaches.Add(cache);
            _blockRooms.Add(cache.Reserve(start, positions.Slice(start, end - start)));
        }
        Device.AppendToCaches(k, v, rowPositions, _blockRooms);
        if (scores.IsEmpty)
        {
            _blockEntries.Clear();
            for (int i = 0; i < _blockCaches.Count; i++) _blockEntries.Add(_blockCaches[i].Entries(_blockRooms[i].FirstRow, _blockRooms[i].Rows));
            Device.Attention(q, rowPositions, _blockEntries, c.Heads, c.KvHeads, c.HeadDim, attended);
        }
        else
        {
            // Only routers ask for scores; they read them between blocks, so they come back here.
            for (int i = 0; i < _blockCaches.Count; i++)
            {
                var (cache, start, count) = (_blockCaches[i], _blockRooms[i].FirstRow, _blockRooms[i].Rows);
                var received = _scratch.Get(Scratch.KeyAttention, cache.Count);
                Device.Attention(
                    q.Slice(start * c.QueryDim, count * c.QueryDim), rowPositions.Slice(start, count),
                    cache.Keys, cache.Values, cache.DevicePositions, c.Heads, c.KvHeads, c.HeadDim,
                    attended.Slice(start * c.QueryDim, count * c.QueryDim), received);
                var receivedOnHost = _hostScratch.Get(HostScratch.KeyAttention, cache.Count);
                Device.Download(received, receivedOnHost);
                AverageAttention(receivedOnHost, c.Heads, scores.Slice(start, count));
            }
        }
        Device.MatMulAdd(attended, n, w.AttentionOutput, x);

        // MLP: x += W_down · (silu(W_gate·norm(x)) ⊙ W_up·norm(x))
        Device.SwiGluMatMul(x, n, w.Gate, w.Up, gated, new RowNorm(w.FfnNorm.All, c.RmsNormEps));
        Device.MatMulAdd(gated, n, w.Down, x);
    }

    /// <summary>
    /// The attention score of each of a sequence's new rows from what its keys received, summed over heads and
    /// queries. The new rows are the cache's last entries, in order; causality lets new row i be seen by
    /// itself and the new rows after it, so its sum is over heads × (count − i) query rows.
    /// </summary>
    private static void AverageAttention(ReadOnlySpan<float> received, int heads, Span<float> scores)
    {
        int count = scores.Length, first = received.Length - count;
        for (int i = 0; i < count; i++)
            scores[i] = received[first + i] / (heads * (count - i));
    }

    /// <summary>
    /// Checked before any block runs, so a bad batch changes no cache: each sequence's rows are
    /// contiguous, in increasing position order, and after everything its cache already holds.
    /// </summary>
    private static void CheckRowOrder(ReadOnlySpan<TokenRow> rows)
    {
        HashSet<KvCache>? finished = null;
        for (int i = 0; i < rows.Length; i++)
        {
            if (i > 0 && rows[i].Cache == rows[i - 1].Cache)
            {
                if (rows[i].Position <= rows[i - 1].Position)
                    throw new ArgumentException($"row {i}: positions of a sequence must increase ({rows[i - 1].Position} then {rows[i].Position})");
                continue;
            }
            if (i > 0)
            {
                finished ??= new HashSet<KvCache>();
                if (!finished.Add(rows[i - 1].Cache) || finished.Contains(rows[i].Cache))
                    throw new ArgumentException($"row {i}: the rows of a sequence must be contiguous");
            }
            int last = rows[i].Cache.LastPosition;
            if (rows[i].Position <= last)
                throw new ArgumentException($"row {i}: position {rows[i].Position} is not after the {last} its sequence's cache already holds");
        }
    }

    public void Dispose()
    {
        _upload.Dispose();
        _scratch.Dispose();
        Slice.Dispose();
    }

    /// <summary>Device buffers reused across calls, grown to the largest batch seen.</summary>
    private sealed class Scratch(IComputeDevice device) : IDisposable
    {
        public const int Normed = 0, Query = 1, Key = 2, Value = 3, Attended = 4, Gated = 5, Gathered = 6, KeyAttention = 7,
            Input = 8, Logits = 9;
        private readonly DeviceBuffer<float>?[] _buffers = new DeviceBuffer<float>?[10];

        public DeviceSpan<float> Get(int which, int length)
        {
            if (_buffers[which] is not { } buffer || buffer.Length < length)
            {
                _buffers[which]?.Dispose();
                _buffers[which] = buffer = device.Allocate<float>(length);
            }
            return buffer.Span(length);
        }

        public void Dispose()
        {
            foreach (var buffer in _buffers) buffer?.Dispose();
        }
    }

    /// <summary>Host buffers reused across calls: the rows' positions, the attention scores routers read, a group's rows and logits.</summary>
    private sealed class HostScratch
    {
        public const int GatheredScores = 0, KeyAttention = 1, Logits = 2, GatheredRows = 3;
        private readonly float[][] _buffers = [[], [], [], []];
        private int[] _positions = [];

        public Span<float> Get(int which, int length)
        {
            if (_buffers[which].Length < length)
                _buffers[which] = new float[length];
            return _buffers[which].AsSpan(0, length);
        }

        public Span<int> GetPositions(int length)
        {
            if (_positions.Length < length) _positions = new int[length];
            return _positions.AsSpan(0, length);
        }
    }
}
