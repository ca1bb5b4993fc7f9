using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class FlopCountTests
{
    // dim 4, 2 heads of 2 (query dim 4), 1 KV head (KV dim 2), MLP 6, vocabulary 10, 2 blocks.
    private static readonly ModelConfig Config = new()
    {
        Architecture = "llama2c", Dim = 4, HiddenDim = 6, Layers = 2, Heads = 2, KvHeads = 1, HeadDim = 2, VocabSize = 10, MaxSeqLen = 16,
    };

    [Fact]
    public void A_block_counts_its_matrices_per_row_and_attention_per_key_seen()
    {
        // Weights: q 4·4 + k 4·2 + v 4·2 + o 4·4 + gate, up, down 3·4·6 = 120.
        Assert.Equal(120, FlopCount.MatrixWeightsPerBlock(Config));
        // 3 rows see 1 + 2 + 3 = 6 keys; matrices 2·3·120 = 720, QKᵀ and AV 2 · 2·4 · 6 = 96.
        Assert.Equal(6, FlopCount.KeysAttended(3));
        Assert.Equal(816, FlopCount.Block(Config, 3, 6));
    }

    [Fact]
    public void A_sequence_counts_each_block_over_its_rows_and_the_head_over_every_position()
    {
        // The head: 2 · 3 positions · 4 · 10 = 240, pruned or not.
        Assert.Equal(240 + 2 * 816, FlopCount.DenseSequence(Config, 3));
        int[] all = [0, 1, 2];
        Assert.Equal(FlopCount.DenseSequence(Config, 3), FlopCount.Sequence(Config, 3, [all, all]));
        // Block 1 computes rows 0 and 2: 2·2·120 + 2·2·4·(1 + 2) = 528. A removed block costs nothing.
        Assert.Equal(240 + 816 + 528, FlopCount.Sequence(Config, 3, [all, [0, 2]]));
        Assert.Equal(240 + 816, FlopCount.Sequence(Config, 3, [[], all]));
    }

    [Fact]
    public void A_prefill_counts_the_head_for_the_last_position_only()
    {
        // The head: 2 · 1 position · 4 · 10 = 80.
        Assert.Equal(80 + 2 * 816, FlopCount.DensePrefill(Config, 3));
        int[] all = [0, 1, 2];
        Assert.Equal(FlopCount.DensePrefill(Config, 3), FlopCount.Prefill(Config, [all, all]));
        Assert.Equal(80 + 816 + 528, FlopCount.Prefill(Config, [all, [0, 2]]));
    }
}
