using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>Sizes of one causal grouped-query attention call.</summary>
internal readonly record struct AttentionShape(int Queries, int Keys, int Heads, int KvHeads, int HeadDim, float Scale);

/// <summary>
/// Three attention kernels. <see cref="Attention"/> keeps every attention weight in device memory, which
/// <see cref="KeyTotals"/> needs when the caller asks for the attention each key received.
/// <see cref="TiledAttention"/> never stores a weight: it is the one to run when no totals are asked for, unless
/// fewer query rows than a tile meet a long cache (decode), where <see cref="SplitKeyAttention"/> and
/// <see cref="CombineSplits"/> spread the keys over many warps.
/// </summary>
internal static class AttentionKernels
{
    /// <summary>Query rows per tiled-attention group, a warp each: every key and value tile staged in shared memory serves this many rows.</summary>
    public const int QueryTile = 8;

    /// <summary>Keys per tile, one per lane, so that a row's max and sum over a tile are warp reductions.</summary>
    public const int KeyTile = 32;

    /// <summary>
    /// The widest head the shared tiles hold: the models' heads are 64, 96 or 128 wide. Wider heads go to
    /// <see cref="Attention"/>, which keeps nothing per head dim in shared memory.
    /// </summary>
    public const int MaxTiledHeadDim = 128;

    /// <summary>Keys per split of <see cref="SplitKeyAttention"/>: a warp scores them, two a lane.</summary>
    public const int SplitKeys = 64;

    /// <summary>Row stride of the shared key tile: odd, so that 32 lanes reading 32 keys at the same d hit 32 banks.</summary>
    private const int KeyTileStride = MaxTiledHeadDim + 1;

    /// <summary>One warp per (query row, head).</summary>
    public static KernelConfig AttentionConfig(AttentionShape s, int warpSize) => new(s.Queries * s.Heads, warpSize);

    /// <summary>Whether <see cref="TiledAttention"/> can run <paramref name="s"/>: its tile edge is one warp, and its shared tiles hold heads up to <see cref="MaxTiledHeadDim"/>.</summary>
    public static bool FitsTiledAttention(AttentionShape s, int warpSize) => warpSize == KeyTile && s.HeadDim <= MaxTiledHeadDim;

    /// <summary>Group (x, y) = (tile x of query rows, head y); its threads are KeyTile lanes × one warp per row. Fewer queries than a tile make a smaller group, so a decode row is one warp, not one of eight.</summary>
    public static KernelConfig TiledAttentionConfig(AttentionShape s)
    {
        int rows = Math.Min(QueryTile, s.Queries);
        return new(new Index2D((s.Queries + rows - 1) / rows, s.Heads), new Index2D(KeyTile, rows));
    }

    /// <summary>
    /// Whether <see cref="SplitKeyAttention"/> should run <paramref name="s"/>: fewer rows than a query tile, so that the
    /// tiled kernel would run one warp per head, over more keys than one split; heads that the shared row holds.
    /// </summary>
    public static bool SplitsKeys(AttentionShape s, int warpSize) =>
        FitsTiledAttention(s, warpSize) && s.Queries < QueryTile && s.Keys > SplitKeys;

    /// <summary>The splits of <see cref="SplitKeyAttention"/> over <paramref name="s"/>'s keys.</summary>
    public static int Splits(AttentionShape s) => (s.Keys + SplitKeys - 1) / SplitKeys;

    /// <summary>Floats of the partial results of one (query row, head, split): its max, its sum, then its weighted sum of values.</summary>
    public static int PartialWidth(AttentionShape s) => s.HeadDim + 2;

    /// <summary>Warp (split, query row · heads + head).</summary>
    public static KernelConfig SplitKeyAttentionConfig(AttentionShape s) =>
        new(new Index2D(Splits(s), s.Queries * s.Heads), new Index2D(KeyTile, 1));

    /// <summary>One warp per (query row, head).</summary>
    public static KernelConfig CombineSplitsConfig(AttentionShape s) => new(s.Queries * s.Heads, KeyTile);

    /// <summary>
    /// Flash-decoding's first half. A decoded row has one query per head, so the tiled kernel would keep one warp per
    /// head busy walking the whole cache; here warp (s, i · heads + h) takes only keys [s · SplitKeys, +SplitKeys) of
    /// query row i and head h, and every split of every head runs at once. The rows are those of up to eight sequences,
    /// each over its own cache (<paramref name="caches"/>), so a decode step of several sequences is one launch; the
    /// shape's keys are the most any of them holds. The warp scores its visible keys (two a lane), takes their max and
    /// the sum of exp(score − max), and weights the value rows by those exponentials (a lane per dim). It leaves the
    /// three in <paramref name="partials"/> [query, head, split, (max, sum, dims...)]; a split with no visible key (past
    /// its sequence's cache, or its query's position) leaves max −∞, sum 0. <see cref="CombineSplits"/> puts them together.
    /// </summary>
    public static void SplitKeyAttention(ArrayView<float> q, ArrayView<int> queryPositions, CacheGroup caches,
        ArrayView<float> partials, AttentionShape shape)
    {
        var queryRow = SharedMemory.Allocate<float>(MaxTiledHeadDim);
        var weights = SharedMemory.Allocate<float>(SplitKeys);
        int lane = Group.IdxX, split = Grid.IdxX;
        int query = Grid.IdxY / shape.Heads, head = Grid.IdxY % shape.Heads;
        var cache = caches[caches.SlotOf(query)];
        ArrayView<float> keys = cache.Keys, values = cache.Values;
        int headDim = shape.HeadDim, kvWidth = shape.KvHeads * headDim;
        long kvOffset = head / (shape.Heads / shape.KvHeads) * headDim;
        long queryStart = ((long)query * shape.Heads + head) * headDim;
        int first = split * SplitKeys;
        int end = XMath.Min(first + SplitKeys, VisibleKeys(cache.Positions, cache.Positions.IntLength, queryPositions[query]));

        for (int d = lane; d < headDim; d += KeyTile)
            queryRow[d] = q[queryStart + d];
        Group.Barrier();
        float max = float.NegativeInfinity;
        for (int j = first + lane; j < end; j += KeyTile)
        {
            float score = DotWithKey(queryRow, keys, (long)j * kvWidth + kvOffset, headDim) * shape.Scale;
            weights[j - first] = score;
            max = XMath.Max(max, score);
        }
        max = WarpReduce.Max(max);
        float partialSum = 0f;
        for (int j = first + lane; j < end; j += KeyTile)
        {
            float e = XMath.Exp(weights[j - first] - max);
            weights[j - first] = e;
            partialSum += e;
        }
        float sum = WarpReduce.Sum(partialSum);
        // Each lane now reads the weights of every lane.
        Group.Barrier();

        long at = ((long)Grid.IdxY * Splits(shape) + split) * PartialWidth(shape);
        for (int d = lane; d < headDim; d += KeyTile)
        {
            float weighted = 0f;
            for (int j = first; j < end; j++)
                weighted += weights[j - first] * values[(long)j * kvWidth + kvOffset + d];
            partials[at + 2 + d] = weighted;
        }
        if (lane == 0)
        {
            partials[at] = max;
            partials[at + 1] = sum;
        }
    }

    /// <summary>
    /// Flash-decoding's second half: warp (query row · heads + head) rescales every split's sum and weighted values to
    /// the largest split max and divides; a row that sees no key gets zeros, as the other kernels give it.
    /// </summary>
    public static void CombineSplits(ArrayView<float> partials, ArrayView<float> output, AttentionShape shape)
    {
        int lane = Group.IdxX, splits = Splits(shape), width = PartialWidth(shape);
        long first = (long)Grid.IdxX * splits * width;
        float max = float.NegativeInfinity;
        for (int s = 0; s < splits; s++)
            max = XMath.Max(max, partials[first + s * width]);
        float sum = 0f;
        if (max > float.NegativeInfinity)
            for (int s = 0; s < splits; s++)
                sum += partials[first + s * width + 1] * XMath.Exp(partials[first + s * width] - max);
        long outputStart = (long)Grid.IdxX * shape.HeadDim;
        for (int d = lane; d < shape.HeadDim; d += KeyTile)
        {
            float weighted = 0f;
            if (sum > 0f)
                for (int s = 0; s < splits; s++)
                {
                    long at = first + s * width;
                    weighted += partials[at + 2 + d] * XMath.Exp(partials[at] - max);
                }
            output[outputStart + d] = sum > 0f ? weighted / sum : 0f;
        }
    }

    private static float DotWithKey(ArrayView<float> queryRow, ArrayView<float> keys, long keyStart, int length)
    {
        float dot = 0f;
        for (int d = 0; d < length; d++)
            dot += queryRow[d] * keys[keyStart + d];
        return dot;
    }

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

    /// <summary>
    /// Causal grouped-query attention with an online softmax (flash attention). Group (x, y) takes query rows
    /// [x · rows, +rows) of head y, warp r row r. It walks the keys that any of its rows sees in tiles of
    /// <see cref="KeyTile"/>, staging each key and value tile once in shared memory for all its rows. A row keeps
    /// the largest score so far, the sum of exp(score − that max) and the matching weighted sum of value rows
    /// (in shared memory, as the head dim is known only at run time; a lane owns dims lane, lane + 32, …);
    /// a larger max in a new tile rescales both. The output is the weighted sum divided by the sum; a row that
    /// sees no key gets zeros, as <see cref="Attention"/> gives it.
    /// </summary>
    public static void TiledAttention(ArrayView<float> q, ArrayView<int> queryPositions,
        ArrayView<float> keys, ArrayView<float> values, ArrayView<int> keyPositions,
        ArrayView<float> output, AttentionShape shape)
    {
        var queryRows = SharedMemory.Allocate<float>(QueryTile * MaxTiledHeadDim);
        var keyTile = SharedMemory.Allocate<float>(KeyTile * KeyTileStride);
        var valueTile = SharedMemory.Allocate<float>(KeyTile * MaxTiledHeadDim);
        var tileWeights = SharedMemory.Allocate<float>(QueryTile * KeyTile);
        var weightedSums = SharedMemory.Allocate<float>(QueryTile * MaxTiledHeadDim);
        var visibleByRow = SharedMemory.Allocate<int>(QueryTile);

        int lane = Group.IdxX, row = Group.IdxY, rows = Group.DimY;
        int query = Grid.IdxX * rows + row, head = Grid.IdxY;
        int headDim = shape.HeadDim, kvWidth = shape.KvHeads * headDim;
        long kvOffset = head / (shape.Heads / shape.KvHeads) * headDim;
        long queryStart = ((long)query * shape.Heads + head) * headDim;
        bool isQuery = query < shape.Queries;
        int visible = isQuery ? VisibleKeys(keyPositions, shape.Keys, queryPositions[query]) : 0;
        int rowStart = row * MaxTiledHeadDim;

        for (int d = lane; d < headDim; d += KeyTile)
        {
            if (isQuery)
                queryRows[rowStart + d] = q[queryStart + d];
            weightedSums[rowStart + d] = 0f;
        }
        if (lane == 0)
            visibleByRow[row] = visible;
        Group.Barrier();
        int groupVisible = 0;
        for (int r = 0; r < rows; r++)
            groupVisible = XMath.Max(groupVisible, visibleByRow[r]);

        float runningMax = float.NegativeInfinity, runningSum = 0f;
        for (int tileStart = 0; tileStart < groupVisible; tileStart += KeyTile)
        {
            // Warps take whole key rows, lanes along a row: adjacent lanes read adjacent floats.
            for (int j = row; j < KeyTile && tileStart + j < groupVisible; j += rows)
            {
                long keyStart = (long)(tileStart + j) * kvWidth + kvOffset;
                for (int d = lane; d < headDim; d += KeyTile)
                {
                    keyTile[j * KeyTileStride + d] = keys[keyStart + d];
                    valueTile[j * MaxTiledHeadDim + d] = values[keyStart + d];
                }
            }
            Group.Barrier();
            // A row whose visible prefix ends before this tile skips it; the test is the same on all of a warp's lanes.
            if (tileStart < visible)
            {
                int tileKeys = Math.Min(KeyTile, visible - tileStart);
                bool hasKey = lane < tileKeys;
                float score = float.NegativeInfinity;
                if (hasKey)
                    score = Dot(queryRows, rowStart, keyTile, lane * KeyTileStride, headDim) * shape.Scale;
                // Finite: the tile's first key is visible. Against the first tile's old max of −∞ the rescale is 0.
                float newMax = XMath.Max(runningMax, WarpReduce.Max(score));
                float rescale = XMath.Exp(runningMax - newMax);
                float weight = hasKey ? XMath.Exp(score - newMax) : 0f;
                runningSum = runningSum * rescale + WarpReduce.Sum(weight);
                runningMax = newMax;
                tileWeights[row * KeyTile + lane] = weight;
                // Each lane now reads the weights of all the warp's lanes.
                Warp.Barrier();
                AddWeightedValues(tileWeights, valueTile, weightedSums, row, tileKeys, headDim, rescale);
            }
            // The next tile overwrites the keys and values that the slowest row may still be reading.
            Group.Barrier();
        }

        if (!isQuery)
            return;
        for (int d = lane; d < headDim; d += KeyTile)
            output[queryStart + d] = runningSum > 0f ? weightedSums[rowStart + d] / runningSum : 0f;
    }

    private static float Dot(ArrayView<float> x, int xStart, ArrayView<float> y, int yStart, int length)
    {
        float dot = 0f;
        for (int d = 0; d < length; d++)
            dot += x[xStart + d] * y[yStart + d];
        return dot;
    }

    /// <summary>
    /// Row <paramref name="row"/>'s weighted sum of values, scaled by <paramref name="rescale"/> to the row's new max,
    /// plus the first <paramref name="tileKeys"/> staged value rows weighted by the row's tile weights. A lane updates
    /// dims lane, lane + KeyTile, …: only its own, so no other thread waits on them.
    /// </summary>
    private static void AddWeightedValues(ArrayView<float> tileWeights, ArrayView<float> valueTile, ArrayView<float> weightedSums,
        int row, int tileKeys, int headDim, float rescale)
    {
        int weightStart = row * KeyTile, rowStart = row * MaxTiledHeadDim;
        for (int d = Group.IdxX; d < headDim; d += KeyTile)
        {
            float sum = 0f;
            for (int j = 0; j < tileKeys; j++)
                sum += tileWeights[weightStart + j] * valueTile[j * MaxTiledHeadDim + d];
            weightedSums[rowStart + d] = weightedSums[rowStart + d] * rescale + sum;
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
