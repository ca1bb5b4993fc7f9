using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// Causal grouped-query attention of one sequence on the CPU. Work items are (head, block of queries),
/// enough of them to keep both cores busy even for a single decode row. Keys are in position order,
/// so the keys a query sees are a prefix (found by binary search).
/// </summary>
public static unsafe class Attention
{
    private const int QueriesPerItem = 16;

    /// <param name="keyAttention">When not empty, receives per key the attention it got, summed over heads and queries.</param>
    public static void Run(ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> keyPositions,
        int heads, int kvHeads, int headDim, Span<float> output, Span<float> keyAttention, WorkerPool pool)
    {
        int nq = queryPositions.Length, nk = keyPositions.Length;
        if (heads % kvHeads != 0) throw new ArgumentException($"heads ({heads}) must be a multiple of kv heads ({kvHeads})");
        if (q.Length < nq * heads * headDim || output.Length < nq * heads * headDim)
            throw new ArgumentException($"queries and output need {nq} rows of {heads * headDim}");
        if (keys.Length < nk * kvHeads * headDim || values.Length < nk * kvHeads * headDim)
            throw new ArgumentException($"keys and values need {nk} rows of {kvHeads * headDim}");
        if (nq == 0) return;

        int chunks = (nq + QueriesPerItem - 1) / QueriesPerItem;
        int items = heads * chunks;
        float[]? perItem = keyAttention.IsEmpty ? null : ArrayPool<float>.Shared.Rent(items * nk);
        if (perItem is not null) Array.Clear(perItem, 0, items * nk);
        fixed (float* pq = q, pk = keys, pv = values, po = output, pa = perItem)
        fixed (int* pqPos = queryPositions, pkPos = keyPositions)
        {
            pool.For(items, new Body
            {
                Q = pq, K = pk, V = pv, Output = po, PerItemAttention = pa,
                QueryPositions = pqPos, KeyPositions = pkPos,
                Nq = nq, Nk = nk, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Chunks = chunks,
                Scale = 1f / MathF.Sqrt(headDim),
            });
        }
        if (perItem is not null)
        {
            var total = keyAttention.Slice(0, nk);
            total.Clear();
            for (int i = 0; i < items; i++)
                TensorPrimitives.Add(total, perItem.AsSpan(i * nk, nk), total);
            ArrayPool<float>.Shared.Return(perItem);
        }
    }

    private struct Body : IForBody
    {
        public float* Q, K, V, Output, PerItemAttention;
        public int* QueryPositions, KeyPositions;
        public int Nq, Nk, Heads, KvHeads, HeadDim, Chunks;
        public float Scale;


        public readonly void Invoke(int item)
        {
            int head = item / Chunks, first = item % Chunks * QueriesPerItem, last = Math.Min(Nq, first + QueriesPerItem);
            int kvHead = head / (Heads / KvHeads), qWidth = Heads * HeadDim, kvWidth = KvHeads * HeadDim;
            float[]? rented = Nk > 4096 ? ArrayPool<float>.Shared.Rent(Nk) : null;
            Span<float> scores = rented ?? stackalloc float[Math.Max(Nk, 1)];
            float* k = K + kvHead * HeadDim, v = V + kvHead * HeadDim;
            for (int i = first; i < last; i++)
            {
                int visible = VisibleKeys(KeyPositions, Nk, QueryPositions[i]);
                if (visible == 0)
                {
                    // Nothing to attend to: zeros, as the ILGPU kernels give (no caller makes such a row today).
                    new Span<float>(Output + (long)i * qWidth + head * HeadDim, HeadDim).Clear();
                    continue;
                }
                var s = scores.Slice(0, visible);
                float* query = Q + (long)i * qWidth + head * HeadDim;
                Scores(query, k, kvWidth, HeadDim, Scale, s);
                // Shifting by the max keeps exp finite; the result is unchanged.
                TensorPrimitives.Subtract(s, TensorPrimitives.Max(s), s);
                TensorPrimitives.Exp(s, s);
                TensorPrimitives.Multiply(s, 1f / TensorPrimitives.Sum(s), s);
                WeightedSum(v, kvWidth, HeadDim, s, Output + (long)i * qWidth + head * HeadDim);
                if (PerItemAttention != null)
                {
                    var total = new Span<float>(PerItemAttention + (long)item * Nk, visible);
                    TensorPrimitives.Add(total, s, total);
                }
            }
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    private static int VisibleKeys(int* positions, int count, int queryPosition)
    {
        int lo = 0, hi = count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (positions[mid] <= queryPosition) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// scores[j] = scale · (query · key j) for the keys [0, scores.Length), rows keyStride apart. Four keys
    /// at a time, so four independent FMA chains hide the FMA latency.
    /// </summary>

    private static void Scores(float* query, float* keys, int keyStride, int headDim, float scale, Span<float> scores)
    {
        int n = scores.Length, j = 0;
        if (Vector512.IsHardwareAccelerated && headDim % 16 == 0)
        {
            for (; j <= n - 4; j += 4)
            {
                float* k0 = keys + (long)j * keyStride;
                float* k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride;
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int d = 0; d < headDim; d += 16)
                {
                    var q = Vector512.Load(query + d);
                    a0 = Vector512.FusedMultiplyAdd(q, Vector512.Load(k0 + d), a0);
                    a1 = Vector512.FusedMultiplyAdd(q, Vector512.Load(k1 + d), a1);
                    a2 = Vector512.FusedMultiplyAdd(q, Vector512.Load(k2 + d), a2);
                    a3 = Vector512.FusedMultiplyAdd(q, Vector512.Load(k3 + d), a3);
                }
                scores[j] = Vector512.Sum(a0) * scale;
                scores[j + 1] = Vector512.Sum(a1) * scale;
                scores[j + 2] = Vector512.Sum(a2) * scale;
                scores[j + 3] = Vector512.Sum(a3) * scale;
            }
        }
        for (; j < n; j++)
            scores[j] = TensorPrimitives.Dot(new ReadOnlySpan<float>(query, headDim), new ReadOnlySpan<float>(keys + (long)j * keyStride, headDim)) * scale;
    }

    /// <summary>
    /// output = Σ_j weights[j] · value j. The output stays in registers across all the keys, 64 floats at a
    /// time: storing and reloading it per key would chain every step on store-to-load forwarding.
    /// </summary>

    private static void WeightedSum(float* values, int valueStride, int headDim, ReadOnlySpan<float> weights, float* output)
    {
        int d = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; d <= headDim - 64; d += 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int j = 0; j < weights.Length; j++)
                {
                    float* v = values + (long)j * valueStride + d;
                    var w = Vector512.Create(weights[j]);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), w, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 16), w, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 32), w, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 48), w, a3);
                }
                a0.Store(output + d);
                a1.Store(output + d + 16);
                a2.Store(output + d + 32);
                a3.Store(output + d + 48);
            }
            for (; d <= headDim - 16; d += 16)
            {
                Vector512<float> a = default;
                for (int j = 0; j < weights.Length; j++)
                    a = Vector512.FusedMultiplyAdd(Vector512.Load(values + (long)j * valueStride + d), Vector512.Create(weights[j]), a);
                a.Store(output + d);
            }
        }
        for (; d < headDim; d++)
        {
            float a = 0;
            for (int j = 0; j < weights.Length; j++) a += values[(long)j * valueStride + d] * weights[j];
            output[d] = a;
        }
    }
}
