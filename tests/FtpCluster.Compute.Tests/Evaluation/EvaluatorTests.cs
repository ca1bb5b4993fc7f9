using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class EvaluatorTests
{
    [SharedModelsFact]
    public void Dense_against_dense_has_ratio_one_no_divergence_and_full_agreement()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var sequences = AidreamsSequences.Make(model);
        var results = Evaluator.Evaluate(model, sequences, [new DenseMethod(model)]);

        Assert.Equal(2, results.Count);
        foreach (var r in results)
        {
            Assert.Equal("dense", r.Method);
            Assert.Equal(1, r.PerplexityRatio);
            Assert.Equal(1, r.FullPerplexityRatio);
            Assert.Equal(0, r.Kl);
            Assert.Equal(0, r.FullKl);
            Assert.Equal(1, r.Top1Agreement);
            Assert.Equal(1, r.FlopsRatio);
            Assert.Equal(0, r.SparsityAchieved);
            Assert.All(r.BlockSparsity, s => Assert.Equal(0, s));
            Assert.Null(r.WireBytesRatio);
        }
    }

    [SharedModelsFact]
    public void Dense_perplexity_is_over_the_continuation_tokens_only()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var sequences = AidreamsSequences.Make(model);
        var dense = Evaluator.Evaluate(model, sequences, [])[0];

        // Straight from the logits: −log softmax(row r)[ids[r + 1]] over the continuation's rows, and over all rows.
        double continuationNll = 0, fullNll = 0;
        int continuationCount = 0, fullCount = 0, vocab = model.Config.VocabSize;
        foreach (var s in sequences)
        {
            var logits = Generator.AllLogits(model, s.Ids);
            int start = s.Ids.Length - Math.Max(8, (int)Math.Ceiling(s.Ids.Length / 4.0));
            for (int r = 0; r + 1 < s.Ids.Length; r++)
            {
                var row = logits.AsSpan(r * vocab, vocab).ToArray().Select(l => (double)l).ToArray();
                double max = row.Max();
                double nll = -(row[s.Ids[r + 1]] - max - Math.Log(row.Sum(l => Math.Exp(l - max))));
                fullNll += nll;
                fullCount++;
                if (r + 1 >= start)
                {
                    continuationNll += nll;
                    continuationCount++;
                }
            }
        }
        Assert.Equal(Math.Exp(continuationNll / continuationCount), dense.Perplexity, 9);
        Assert.Equal(Math.Exp(fullNll / fullCount), dense.FullPerplexity, 9);
        Assert.NotEqual(dense.Perplexity, dense.FullPerplexity);
    }

    [SharedModelsFact]
    public void Block_removal_reports_its_achieved_sparsity_flops_and_damage()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var sequences = AidreamsSequences.Make(model);
        var context = new EvalMethodContext(model, sequences);
        var shortGpt = (ShortGptMethod)EvalMethods.Find("shortgpt").Create(context, 0.3, new RoutingOptions { Mode = RoutingMode.OnePass });
        var result = Evaluator.Evaluate(model, sequences, [shortGpt])[1];

        var c = model.Config;
        Assert.Equal(("shortgpt", "one-pass", 0.3), (result.Method, result.Routing, result.SparsityTarget));
        int removed = Assert.Single(shortGpt.RemovedBlocks);
        Assert.Equal(0.25, result.SparsityAchieved);
        Assert.Equal(Enumerable.Range(0, c.Layers).Select(b => b == removed ? 1.0 : 0.0), result.BlockSparsity);
        double head = sequences.Sum(s => FlopCount.LmHead(c, s.Ids.Length));
        double block = sequences.Sum(s => FlopCount.Block(c, s.Ids.Length, FlopCount.KeysAttended(s.Ids.Length)));
        Assert.Equal((head + 3 * block) / (head + 4 * block), result.FlopsRatio, 12);
        Assert.True(result.Kl > 0);
        Assert.True(result.Top1Agreement < 1);
    }

    [SharedModelsFact]
    public void A_method_reporting_unsorted_rows_is_named_in_the_error()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var sequences = AidreamsSequences.Make(model, sampled: 0);
        var e = Assert.Throws<InvalidOperationException>(() => Evaluator.Evaluate(model, sequences, [new UnsortedRows(model)]));
        Assert.Equal($"method unsorted, block 1: computed rows must be sorted, distinct and in [0, {sequences[0].Ids.Length})", e.Message);
    }

    [Fact]
    public void Unknown_methods_are_refused_with_the_known_ones_listed()
    {
        var e = Assert.Throws<ArgumentException>(() => EvalMethods.Find("magic"));
        Assert.StartsWith("unknown method 'magic' (known: dense, shortgpt", e.Message);
    }

    /// <summary>Dense logits, but claims block 1 computed rows in the wrong order.</summary>
    private sealed class UnsortedRows(TransformerStage model) : IEvalMethod
    {
        public string Name => "unsorted";
        public string Routing => "block";
        public IReadOnlyList<LayerRange>? Stages => null;
        public double SparsityTarget => 0;

        public MethodOutput Run(int[] ids)
        {
            var all = Enumerable.Range(0, ids.Length).ToArray();
            var rows = Enumerable.Repeat(all, model.Config.Layers).ToArray();
            rows[1] = [2, 1];
            return new(Generator.AllLogits(model, ids), rows);
        }
    }
}
