using FtpCluster.Compute.Models;
using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// Rows of <see cref="Heads"/> query heads and <see cref="KvHeads"/> key heads. Pair i of a head rotates elements
/// (i · PairStep, i · PairStep + PartnerOffset): (2i, 2i + 1) for adjacent pairs, (i, i + headDim/2) for halves.
/// Numbers rather than a flag, since kernel parameters must be blittable.
/// </summary>
internal readonly record struct RopeShape(int Heads, int KvHeads, int HeadDim, int PairStep, int PartnerOffset)
{
    public static RopeShape For(int heads, int kvHeads, int headDim, RopeLayout layout) => layout == RopeLayout.AdjacentPairs
        ? new RopeShape(heads, kvHeads, headDim, 2, 1)
        : new RopeShape(heads, kvHeads, headDim, 1, headDim / 2);
}

internal static class RopeKernels
{
    /// <summary>
    /// One thread per (row, head, pair), the query heads of a row then its key heads, so that one launch rotates both.
    /// cos and sin come from tables [position, headDim/2] built on the host: GPU sin/cos approximations lose accuracy
    /// at the large angles long positions reach.
    /// </summary>
    public static void Rope(Index1D index, ArrayView<float> q, ArrayView<float> k, ArrayView<int> positions,
        ArrayView<float> cosTable, ArrayView<float> sinTable, RopeShape shape)
    {
        int half = shape.HeadDim / 2;
        int pair = index % half;
        int head = index / half % (shape.Heads + shape.KvHeads);
        int row = index / half / (shape.Heads + shape.KvHeads);
        bool isQuery = head < shape.Heads;
        var x = isQuery ? q : k;
        long headStart = isQuery
            ? ((long)row * shape.Heads + head) * shape.HeadDim
            : ((long)row * shape.KvHeads + head - shape.Heads) * shape.HeadDim;
        long a = headStart + pair * shape.PairStep;
        long b = a + shape.PartnerOffset;
        long angle = (long)positions[row] * half + pair;
        float cos = cosTable[angle], sin = sinTable[angle];
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * cos - x1 * sin;
        x[b] = x0 * sin + x1 * cos;
    }
}
