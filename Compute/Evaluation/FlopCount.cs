using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// Floating-point operations of a forward pass, counting what dominates and what pruning changes:
/// every matrix multiply is 2 · rows · (weights of the matrix), and attention is QKᵀ plus AV, each
/// 2 · head_dim per head for every key a query sees. Norms, RoPE, softmax, SwiGLU and biases are
/// element-wise (under 1% of a block at any real size) and left out of both sides of every ratio.
/// </summary>
public static class FlopCount
{
    /// <summary>Weights of the matrices one block multiplies each computed row by: q, k, v, o, gate, up, down.</summary>
    public static long MatrixWeightsPerBlock(ModelConfig c) =>
        (long)c.Dim * c.QueryDim + 2L * c.Dim * c.KvDim + (long)c.QueryDim * c.Dim + 3L * c.Dim * c.HiddenDim;

    /// <param name="rows">Tokens the block computes.</param>
    /// <param name="keysAttended">Summed over those tokens, how many keys each one's query sees.</param>
    public static double Block(ModelConfig c, long rows, long keysAttended) =>
        2.0 * rows * MatrixWeightsPerBlock(c)
        + 2.0 * 2.0 * c.QueryDim * keysAttended;

    /// <summary>
    /// Keys the queries of a block's computed rows see in one sequence. A block's keys are the rows it
    /// computed (a skipped token is no key there) and attention is causal, so the i-th computed row
    /// sees i + 1 keys.
    /// </summary>
    public static long KeysAttended(long computedRows) => computedRows * (computedRows + 1) / 2;

    /// <summary>The final norm's neighbour, the LM head: logits for <paramref name="rows"/> positions.</summary>
    public static double LmHead(ModelConfig c, long rows) => 2.0 * rows * c.Dim * c.VocabSize;

    /// <summary>
    /// One sequence through the whole model: each block over the rows it computed, and the LM head over
    /// every position (scoring needs them all, dense or pruned alike).
    /// </summary>
    public static double Sequence(ModelConfig c, int length, IReadOnlyList<int[]> computedRows) =>
        LmHead(c, length) + Blocks(c, computedRows);

    /// <summary>The same sequence with every block computing every token.</summary>
    public static double DenseSequence(ModelConfig c, int length) =>
        LmHead(c, length) + c.Layers * Block(c, length, KeysAttended(length));

    /// <summary>
    /// One sequence's prefill as generation runs it: each block over the rows it computed, and the LM head
    /// for the last position only.
    /// </summary>
    public static double Prefill(ModelConfig c, IReadOnlyList<int[]> computedRows) => LmHead(c, 1) + Blocks(c, computedRows);

    /// <summary>The same prefill with every block computing every one of <paramref name="length"/> tokens.</summary>
    public static double DensePrefill(ModelConfig c, int length) => LmHead(c, 1) + c.Layers * Block(c, length, KeysAttended(length));

    /// <summary>One sequence's blocks, each over the rows it computed.</summary>
    private static double Blocks(ModelConfig c, IReadOnlyList<int[]> computedRows) =>
        computedRows.Sum(rows => Block(c, rows.Length, KeysAttended(rows.Length)));
}
