using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>Sizes of one causal grouped-query attention call.</summary>
internal readonly record struct AttentionShape(int Queries, int Keys, int Heads, int KvHeads, int HeadDim, float Scale);

internal static class AttentionKernels
{
    /// <summary>One warp per (query row, head).</summary>
    public static KernelConfig AttentionConfig(AttentionShape s, int warpSize) => new(s.Queries * s.Heads, warpSize);

    /// <summary>
    /// Group g = (query i, head h) with i = g / heads. Its lanes score the visible keys (those at or
    /// before the query's position: a prefix, as keys come in position order), take a softmax, and
    /// sum the value rows weighted by it. The normalized weights stay in
    /// <paramref name="probabilities"/> [queries · heads, keys], zero past the visible prefix, for
    /// <see cref="KeyTotals"/>; they double as the scratch the scores are computed in.
    /// </summary>
    public static void Attention(ArrayView<float> q, ArrayView<int> queryPositions,
        ArrayView<float> keys, ArrayView<float> values, ArrayView<int> keyPositions,
        ArrayView<float> output, ArrayView<float> probabilities, AttentionShape shape)
    {
        int query = Grid.IdxX / shape.Heads, head = Grid.IdxX % shape.Heads;
        int lane = Group.IdxX, lanes = Group.DimX;
        int kvWidth = shape.KvHeads * shape.HeadDim;
        long kvOffset = head / (shape.Heads / shape.KvHeads) * shape.HeadDim;
        long queryStart = ((long)query * shape.Heads + head) * shape.HeadDim;
        long row = (long)Grid.IdxX * shape.Keys;
        int visible = VisibleKeys(keyPositions, shape.Keys, queryPositions[query]);

        float max = float.NegativeInfinity;
        for (int j = lane; j < visible; j += lanes)
        {
            long keyStart = (long)j * kvWidth + kvOffset;
            float dot = 0f;
            for (int d = 0; d < shape.HeadDim; d++)
                dot += q[queryStart + d] * keys[keyStart + d];
            float score = dot * shape.Scale;
            probabilities[row + j] = score;
            max = score > max ? score : max;
        }
        max = WarpReduce.Max(max);

        float partialSum = 0f;
        for (int j = lane; j < visible; j += lanes)
        {
            float e = XMath.Exp(probabilities[row + j] - max);
            probabilities[row + j] = e;
            partialSum += e;
        }
        float inverseSum = 1f / WarpReduce.Sum(partialSum);
        for (int j = lane; j < shape.Keys; j += lanes)
            probabilities[row + j] = j < visible ? probabilities[row + j] * inverseSum : 0f;
        // Each lane now reads weights other lanes wrote.
        Group.Barrier();

        for (int d = lane; d < shape.HeadDim; d += lanes)
        {
            float sum = 0f;
            for (int j = 0; j < visible; j++)
                sum += probabilities[row + j] * values[(long)j * kvWidth + kvOffset + d];
            output[queryStart + d] = sum;
        }
    }

    /// <summary>The number of leading keys whose position is at most <paramref name="queryPosition"/> (binary search).</summary>
    private static int VisibleKeys(ArrayView<int> keyPositions, int keys, int queryPosition)
    {
        int low = 0, high = keys;
        while (low < high)
        {
            int middle = (low + high) / 2;
            if (keyPositions[middle] <= queryPosition)
                low = middle + 1;
            else
                high = middle;
        }
        return low;
    }

    /// <summary>
    /// totals[j] += the attention key j received from these queries, summed over queries within a head
    /// and then over heads (the order the CPU backend adds them in). One thread per key; adding lets
    /// the host split a long query batch into chunks.
    /// </summary>
    public static void KeyTotals(Index1D key, ArrayView<float> probabilities, ArrayView<float> totals, AttentionShape shape)
    {
        float total = 0f;
        for (int h = 0; h < shape.Heads; h++)
        {
            float headTotal = 0f;
            for (int i = 0; i < shape.Queries; i++)
                headTotal += probabilities[((long)i * shape.Heads + h) * shape.Keys + key];
            total += headTotal;
        }
        totals[key] += total;
    }
}
