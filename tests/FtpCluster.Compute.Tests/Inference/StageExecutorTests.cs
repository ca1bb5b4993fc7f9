using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Inference;

public sealed class StageExecutorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-executor-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Three_stages_serving_interleaved_sequences_equal_each_sequence_run_alone()
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 5, Seed = 9 }, _dir);
        using var device = new CpuDevice();
        using var whole = TransformerStage.Load(_dir, device);
        int dim = whole.Config.Dim, vocab = whole.Config.VocabSize;
        int[][] prompts = [[1, 5, 9, 17], [1, 100, 3], [1, 2, 3, 4, 5, 6]];
        var expected = prompts.Select(p => Generator.AllLogits(whole, p)).ToArray();

        SliceSpec[] specs = [new(0, 2, true, false), new(2, 4, false, false), new(4, 5, false, true)];
        var stages = specs.Select(s => new StageExecutor(TransformerStage.Load(_dir, device, s))).ToArray();
        try
        {
            // Prefill sequences 0 and 1 in one microbatch, then 2 alone, then one decode step for all three.
            var logits = prompts.Select(p => new float[p.Length * vocab]).ToArray();
            void Run((int Sequence, int Start, int Count)[] parts)
            {
                var ids = parts.SelectMany(p => Enumerable.Repeat((long)p.Sequence, p.Count)).ToArray();
                var positions = parts.SelectMany(p => Enumerable.Range(p.Start, p.Count)).ToArray();
                var tokens = parts.SelectMany(p => prompts[p.Sequence].Skip(p.Start).Take(p.Count)).ToArray();
                var hidden = new float[tokens.Length * dim];
                stages[0].Stage.Embed(tokens, hidden);
                foreach (var stage in stages) stage.Forward(ids, positions, hidden);
                var rows = new float[tokens.Length * vocab];
                stages[^1].Stage.Logits(hidden, tokens.Length, rows);
                for (int r = 0; r < tokens.Length; r++)
                    rows.AsSpan(r * vocab, vocab).CopyTo(logits[ids[r]].AsSpan(positions[r] * vocab, vocab));
            }
            Run([(0, 0, 3), (1, 0, 2)]);
            Run([(2, 0, 5)]);
            Run([(0, 3, 1), (1, 2, 1), (2, 5, 1)]);

            for (int s = 0; s < prompts.Length; s++)
                for (int t = 0; t < prompts[s].Length; t++)
                    SubsetForwardTests.AssertClose(expected[s].AsSpan(t * vocab, vocab).ToArray().Select(f => (double)f).ToArray(),
                        logits[s].AsSpan(t * vocab, vocab), 1e-6, $"sequence {s}, position {t}");
            Assert.All(stages, stage => Assert.Equal(3, stage.SequencesInFlight));
        }
        finally
        {
            foreach (var stage in stages) stage.Dispose();
        }
    }

    /// <summary>
    /// The coordinator shares microbatches between sequences and replays a sequence as one prefill after a
    /// re-plan, so a row's result must not depend on what travels with it. Dimensions past the GEMM's
    /// 512-wide k block, and a batch past the GEMV's four rows, take every kernel path.
    /// </summary>
    [Fact]
    public void A_sequence_decoded_alone_equals_it_prefilled_in_a_shared_microbatch_bit_for_bit()
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with
            { Layers = 2, Dim = 640, Heads = 10, KvHeads = 5, HiddenDim = 1280, VocabSize = 256, Seed = 5 }, _dir);
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(_dir, device);
        int dim = model.Config.Dim, vocab = model.Config.VocabSize;
        int[] tokens = [1, 40, 7, 200, 13, 99, 5, 31, 8, 64];
        int[] other = [1, 3, 3, 3, 250, 17, 2];

        // Alone, one token per step: the one-row (GEMV) path.
        var alone = new float[tokens.Length * vocab];
        var cache = model.NewCache();
        for (int t = 0; t < tokens.Length; t++)
        {
            var hidden = new float[dim];
            model.Embed(tokens.AsSpan(t, 1), hidden);
            model.Forward([new TokenRow(cache, t)], hidden);
            model.Logits(hidden, 1, alone.AsSpan(t * vocab, vocab));
        }

        // Together with another sequence, all rows in one microbatch: the GEMM path.
        var shared = new float[(other.Length + tokens.Length) * vocab];
        var hiddenShared = new float[(other.Length + tokens.Length) * dim];
        model.Embed([.. other, .. tokens], hiddenShared);
        model.Forward([.. TokenRow.Consecutive(model.NewCache(), 0, other.Length), .. TokenRow.Consecutive(model.NewCache(), 0, tokens.Length)],
            hiddenShared);
        model.Logits(hiddenShared, other.Length + tokens.Length, shared);

        Assert.Equal(alone, shared.AsSpan(other.Length * vocab).ToArray());
    }

    [Fact]
    public void A_reserved_sequence_takes_its_whole_room_in_every_block_once()
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny"), _dir);
        using var device = new CpuDevice();
        using var executor = new StageExecutor(TransformerStage.Load(_dir, device));
        var config = executor.Stage.Config;
        long room = config.Layers * 40 * LayerKvCache.BytesPerRow(config.KvDim);
        Assert.True(executor.Reserve(7, 40));
        Assert.False(executor.Reserve(7, 80));
        Assert.True(executor.HoldsSequence(7));
        Assert.Equal(room, executor.KvCacheBytes);

        // A prompt, then decoded rows up to its length: the room never changes. The same rows unreserved grow.
        var hidden = new float[30 * config.Dim];
        executor.Stage.Embed([.. Enumerable.Range(1, 30)], hidden);
        executor.Forward([.. Enumerable.Repeat(7L, 30)], [.. Enumerable.Range(0, 30)], hidden);
        executor.Forward([.. Enumerable.Repeat(8L, 30)], [.. Enumerable.Range(0, 30)], hidden);
        for (int position = 30; position < 40; position++)
        {
            executor.Stage.Embed([5, 5], hidden.AsSpan(0, 2 * config.Dim));
            executor.Forward([7, 8], [position, position], hidden.AsSpan(0, 2 * config.Dim));
        }
        // Sequence 8's caches took 30 rows at its prompt and grew by 16 at its 31st.
        Assert.Equal(room + config.Layers * 46 * LayerKvCache.BytesPerRow(config.KvDim), executor.KvCacheBytes);
        Assert.True(executor.Release(8));
        Assert.Equal(room, executor.KvCacheBytes);
    }

    [Fact]
    public void Releasing_a_sequence_frees_its_cache_and_a_reused_id_starts_afresh()
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny"), _dir);
        using var device = new CpuDevice();
        using var executor = new StageExecutor(TransformerStage.Load(_dir, device));
        int dim = executor.Stage.Config.Dim;
        var hidden = new float[3 * dim];
        executor.Stage.Embed([1, 2, 3], hidden);
        executor.Forward([7, 7, 8], [0, 1, 0], hidden);
        Assert.Equal(2, executor.SequencesInFlight);
        long bytes = executor.KvCacheBytes;
        Assert.True(bytes > 0);

        Assert.True(executor.Release(7));
        Assert.False(executor.Release(7));
        Assert.Equal(1, executor.SequencesInFlight);
        Assert.True(executor.KvCacheBytes < bytes);

        // Sequence 7 begins again at position 0: accepted because its old cache is gone.
        executor.Stage.Embed([1], hidden.AsSpan(0, dim));
        executor.Forward([7], [0], hidden.AsSpan(0, dim));
        var error = Assert.Throws<ArgumentException>(() => executor.Forward([8], [0], hidden.AsSpan(0, dim)));
        Assert.Contains("position 0 is not after the 0 its sequence's cache already holds", error.Message);
    }
}
