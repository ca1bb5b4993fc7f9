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
    private readonly Scratch _scratch = new();

    public TransformerStage(ModelSlice slice, IComputeDevice device)
    {
        Slice = slice;
        Device = device;
        Rope = new RopeTable(slice.Config);
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

    public KvCache NewCache() => new(Slice.Spec, Config.KvDim);

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
        if (computeRows is not null && computeRows.Count != Slice.Blocks.Count)
            throw new ArgumentException($"computeRows has {computeRows.Count} entries for {Slice.Blocks.Count} blocks");
        ForwardRouted(rows, hidden, computeRows is null ? EveryRow : b => computeRows[b], attentionScores);
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
        CheckRowOrder(rows);
        int dim = Config.Dim, n = rows.Length, blocks = Slice.Blocks.Count;
        int scoredBlocks = n == 0 ? 0 : attentionScores.Length / n;
        if (attentionScores.Length != scoredBlocks * n || scoredBlocks > blocks)
            throw new ArgumentException($"attentionScores has {attentionScores.Length} entries: not whole rows of {n} for at most {blocks} blocks");

        // The subset whose rows are gathered into scratch. Consecutive blocks that compute the same rows (a
        // one-pass plan's stage segment, a uniform schedule) run on the gathered rows one after another,
        // which are scattered back only when a block needs others.
        int[]? gathered = null;
        TokenRow[] gatheredRows = [];
        for (int b = 0; b < blocks; b++)
        {
            var subset = chooseRows(b);
            var blockScores = b < scoredBlocks ? attentionScores.Slice(b * n, n) : Span<float>.Empty;
            if (gathered is not null && (subset is null || !subset.AsSpan().SequenceEqual(gathered)))
            {
                Scatter(gathered, hidden);
                gathered = null;
            }
            if (subset is null)
            {
                RunBlock(Slice.Blocks[b], rows, hidden, blockScores);
                continue;
            }
            blockScores.Fill(float.NaN);
            if (subset.Length == 0) continue;
            if (gathered is null)
            {
                gatheredRows = Gather(Slice.Blocks[b].Layer, subset, rows, hidden);
                gathered = subset;
            }
            var subScores = blockScores.IsEmpty ? Span<float>.Empty : _scratch.Get(Scratch.GatheredScores, subset.Length);
            RunBlock(Slice.Blocks[b], gatheredRows, _scratch.Get(Scratch.Gathered, subset.Length * dim), subScores);
            for (int i = 0; i < subScores.Length; i++)
                blockScores[subset[i]] = subScores[i];
        }
        if (gathered is not null) Scatter(gathered, hidden);
    }

    /// <summary>Copies the <paramref name="subset"/> of the rows and their hidden rows into scratch, checking the indices.</summary>
    private TokenRow[] Gather(int layer, int[] subset, ReadOnlySpan<TokenRow> rows, ReadOnlySpan<float> hidden)
    {
        int dim = Config.Dim;
        var subRows = new TokenRow[subset.Length];
        var subHidden = _scratch.Get(Scratch.Gathered, subset.Length * dim);
        for (int i = 0; i < subset.Length; i++)
        {
            if (i > 0 && subset[i] <= subset[i - 1])
                throw new ArgumentException($"block {layer}: row indices must be sorted and distinct");
            if ((uint)subset[i] >= (uint)rows.Length)
                throw new ArgumentException($"block {layer}: row index {subset[i]} is outside the {rows.Length} rows");
            subRows[i] = rows[subset[i]];
            hidden.Slice(subset[i] * dim, dim).CopyTo(subHidden.Slice(i * dim, dim));
        }
        return subRows;
    }

    /// <summary>Copies the gathered hidden rows back to their places.</summary>
    private void Scatter(int[] subset, Span<float> hidden)
    {
        int dim = Config.Dim;
        var subHidden = _scratch.Get(Scratch.Gathered, subset.Length * dim);
        for (int i = 0; i < subset.Length; i++)
            subHidden.Slice(i * dim, dim).CopyTo(hidden.Slice(subset[i] * dim, dim));
    }

    /// <summary>Final norm and LM head: logits [rows, vocab] for the given hidden rows.</summary>
    public void Logits(ReadOnlySpan<float> hidden, int rows, Span<float> logits)
    {
        var head = Slice.LmHead ?? throw new InvalidOperationException("this slice holds no LM head");
        var normed = _scratch.Get(Scratch.Normed, rows * Config.Dim);
        Device.RmsNorm(hidden.Slice(0, rows * Config.Dim), Slice.FinalNorm, Config.RmsNormEps, normed);
        Device.MatMul(normed, rows, head, logits);
    }

    /// <param name="scores">Empty, or one entry per row for its attention score (see <see cref="ForwardRouted"/>).</param>
    private void RunBlock(BlockWeights w, ReadOnlySpan<TokenRow> rows, Span<float> x, Span<float> scores)
    {
        var c = Config;
        int n = rows.Length;
        var normed = _scratch.Get(Scratch.Normed, n * c.Dim);
        var q = _scratch.Get(Scratch.Query, n * c.QueryDim);
        var k = _scratch.Get(Scratch.Key, n * c.KvDim);
        var v = _scratch.Get(Scratch.Value, n * c.KvDim);
        var attended = _scratch.Get(Scratch.Attended, n * c.QueryDim);
        var projected = _scratch.Get(Scratch.Projected, n * c.Dim);
        var gate = _scratch.Get(Scratch.Gate, n * c.HiddenDim);
        var up = _scratch.Get(Scratch.Up, n * c.HiddenDim);
        var positions = _scratch.GetPositions(n);
        for (int i = 0; i < n; i++) positions[i] = rows[i].Position;

        // Attention: x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
        Device.RmsNorm(x, w.AttentionNorm, c.RmsNormEps, normed);
        Device.MatMul(normed, n, w.Query, q);
        Device.MatMul(normed, n, w.Key, k);
        Device.MatMul(normed, n, w.Value, v);
        if (w.QueryBias is not null) Device.AddBias(q, w.QueryBias);
        if (w.KeyBias is not null) Device.AddBias(k, w.KeyBias);
        if (w.ValueBias is not null) Device.AddBias(v, w.ValueBias);
        Device.Rope(q, c.Heads, positions, Rope);
        Device.Rope(k, c.KvHeads, positions, Rope);
        for (int start = 0, end; start < n; start = end)
        {
            var cache = rows[start].Cache.Layer(w.Layer);
            for (end = start; end < n && rows[end].Cache == rows[start].Cache; end++)
                cache.Append(k.Slice(end * c.KvDim, c.KvDim), v.Slice(end * c.KvDim, c.KvDim), positions[end]);
            var received = scores.IsEmpty ? Span<float>.Empty : _scratch.Get(Scratch.KeyAttention, cache.Count);
            Device.Attention(
                q.Slice(start * c.QueryDim, (end - start) * c.QueryDim), positions.Slice(start, end - start),
                cache.Keys, cache.Values, cache.Positions, c.Heads, c.KvHeads, c.HeadDim,
                attended.Slice(start * c.QueryDim, (end - start) * c.QueryDim), received);
            if (!scores.IsEmpty) AverageAttention(received, c.Heads, scores.Slice(start, end - start));
        }
        Device.MatMul(attended, n, w.AttentionOutput, projected);
        Device.Add(x, projected);

        // MLP: x += W_down · (silu(W_gate·norm(x)) ⊙ W_up·norm(x))
        Device.RmsNorm(x, w.FfnNorm, c.RmsNormEps, normed);
        Device.MatMul(normed, n, w.Gate, gate);
        Device.MatMul(normed, n, w.Up, up);
        Device.SwiGlu(gate, up);
        Device.MatMul(gate, n, w.Down, projected);
        Device.Add(x, projected);
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

    public void Dispose() => Slice.Dispose();

    /// <summary>Buffers reused across calls, grown to the largest batch seen.</summary>
    private sealed class Scratch
    {
        public const int Normed = 0, Query = 1, Key = 2, Value = 3, Attended = 4, Projected = 5, Gate = 6, Up = 7, Gathered = 8,
            GatheredScores = 9, KeyAttention = 10;
        private readonly float[][] _buffers = new float[11][];
        private int[] _positions = [];

        public Span<float> Get(int which, int length)
        {
            if (_buffers[which] is null || _buffers[which].Length < length)
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
