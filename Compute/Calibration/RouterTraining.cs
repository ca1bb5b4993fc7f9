using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Numerics;

namespace FtpCluster.Compute.Calibration;

public sealed record TrainingOptions
{
    /// <summary>Iterations of the guide warm-up, on the static router's own run (no model runs).</summary>
    public int GuideIterations { get; init; } = 300;

    /// <summary>Adam's step size in the warm-up.</summary>
    public double GuideLearningRate { get; init; } = 0.03;

    /// <summary>Iterations with all three losses, each running the model <see cref="Samples"/> times on a batch.</summary>
    public int Iterations { get; init; } = 300;

    /// <summary>Sampled runs of each batch per iteration (at least 2: each sample's baseline is the others' mean).</summary>
    public int Samples { get; init; } = 4;

    /// <summary>Calibration sequences per iteration, drawn without replacement, epoch by epoch.</summary>
    public int BatchSequences { get; init; } = 16;

    /// <summary>Adam's step size with all three losses.</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>After the warm-up, the guide loss's weight halves every this fraction of the iterations.</summary>
    public double GuideHalfLife { get; init; } = 1.0 / 6;

    /// <summary>How often the router is scored on the whole calibration set; the best scored router is the result.</summary>
    public int ScoreEvery { get; init; } = 25;

    public ulong Seed { get; init; }

    public void Validate()
    {
        if (GuideIterations < 0) throw new ArgumentException($"guide iterations must be >= 0, got {GuideIterations}");
        if (Iterations < 0) throw new ArgumentException($"iterations must be >= 0, got {Iterations}");
        if (!(GuideLearningRate > 0)) throw new ArgumentException($"the guide learning rate must be positive, got {GuideLearningRate}");
        if (Samples < 2) throw new ArgumentException($"the distillation gradient needs at least 2 samples per iteration, got {Samples}");
        if (BatchSequences < 1) throw new ArgumentException($"a batch needs at least 1 sequence, got {BatchSequences}");
        if (!(LearningRate > 0)) throw new ArgumentException($"the learning rate must be positive, got {LearningRate}");
        if (!(GuideHalfLife > 0)) throw new ArgumentException($"the guide half-life must be positive, got {GuideHalfLife}");
        if (ScoreEvery < 1) throw new ArgumentException($"scoring every {ScoreEvery} iterations: must be >= 1");
    }
}

/// <summary>The trained router (the best one scored), its score, and the iteration it comes from (0: the warm-up's end).</summary>
public sealed record TrainingResult(LearnedRouter Router, ObjectiveScore Score, int Iteration);

/// <summary>
/// Trains FTP's learned router with the LLM frozen. Three losses, as in the paper:
/// <list type="bullet">
/// <item>Guide toward the static router's choices: a pairwise logistic loss, log(1 + e^−(l_i − l_j)), over
/// every pair of a token the static router keeps (i) and one it skips (j) in the same sequence and block.
/// A block keeps a fraction of each sequence, so its choice is relative; labels taken as absolute (binary
/// cross-entropy) contradict each other across sequence lengths.</item>
/// <item>Sparsity constraint, max(s_b − (1 − mean_t sigmoid(l_t)), 0) per sequence and block: the router's
/// own keep probabilities must not keep more than the block's quota. Top-k meets the quota anyway; this
/// places the logits so that the decode rule (keep the newest iff l ≥ 0) meets it too.</item>
/// <item>Distillation: the KL of the final outputs from the dense model's (<see cref="CalibrationObjective"/>).
/// Top-k selection has no gradient, so this one is estimated by the score function (REINFORCE). While
/// training, each block skips a sample from a Plackett–Luce distribution over the tokens' skip order
/// with weights e^−l (the Gumbel-top-k trick: skip the lowest l − Gumbel noise), whose most likely
/// outcome is the deterministic router's choice. The gradient of E[KL] is E[(KL − b) ∇ log p(skips)],
/// with ∇ log p exact through <see cref="RouterMlp.AccumulateGradient"/>. Each batch is run
/// <see cref="TrainingOptions.Samples"/> times, and each sample's baseline b is the mean KL of the other
/// samples on the same sequence (leave-one-out): a sequence's advantages sum to zero, so the many decisions
/// its samples share cancel and only those that differ are credited. (A baseline of the deterministic
/// router's KL instead, self-critical training, credits every shared decision with each sample's whole
/// difference; on aidreams260K at 40% it reached a calibration KL of 0.0206, this 0.0199.) Each sequence's KL is summed over its
/// continuation predictions, so the estimate is of the gradient of the very mean KL the objective reports.</item>
/// </list>
/// Two stages. The warm-up fits the guide (and the sparsity constraint) alone on the static router's run
/// over all calibration sequences, recorded once: under one-pass routing those are exactly the features
/// any router sees, and no model runs are needed. Then every iteration runs the model on a batch with
/// sampled choices and adds all three gradients, the guide's weight halving every
/// <see cref="TrainingOptions.GuideHalfLife"/> of the iterations; Adam applies them. The router is scored
/// on the whole calibration set at the warm-up's end and every <see cref="TrainingOptions.ScoreEvery"/>
/// iterations, and the best one scored is the result.
/// </summary>
public static class RouterTraining
{
    private const double SparsityWeight = 1;
    private const double Beta1 = 0.9, Beta2 = 0.999, AdamEpsilon = 1e-8;

    /// <summary>One sequence at one routed block: the features its tokens were routed with and which were computed.</summary>
    /// <param name="Scored">The sequence's index in the run's results.</param>
    private sealed record Unit(int Scored, RouterFeatures[] Tokens, bool[] Computed, double Sparsity);

    /// <param name="progress">Called after each scoring with the iteration (0: the warm-up's end), its score and the best so far.</param>
    public static TrainingResult Train(CalibrationObjective objective, SparsitySchedule schedule, TrainingOptions options,
        Action<int, ObjectiveScore, TrainingResult>? progress = null)
    {
        options.Validate();
        var random = new Xoshiro256StarStar(options.Seed);
        var staticUnits = Units(objective.Run(new StaticRouter(), schedule, [.. Enumerable.Range(0, objective.Sequences.Count)]), schedule);
        var router = new LearnedRouter(RouterMlp.Initial(random.NextUInt64()), FitNormalization(staticUnits));
        var parameters = router.Mlp.Parameters;

        var adam = new Adam(parameters.Length);
        for (int iteration = 1; iteration <= options.GuideIterations; iteration++)
        {
            var gradient = new float[parameters.Length];
            foreach (var unit in staticUnits)
            {
                var logits = Logits(router, unit.Tokens);
                var logitGradient = new double[logits.Length];
                AddGuide(logits, unit.Computed, 1.0 / staticUnits.Count, logitGradient);
                AddSparsity(logits, unit.Sparsity, SparsityWeight / staticUnits.Count, logitGradient);
                Backward(router, unit.Tokens, logitGradient, gradient);
            }
            adam.Step(parameters, gradient, options.GuideLearningRate);
        }
        var warmedUp = objective.Score(router, schedule);
        var best = new TrainingResult(new LearnedRouter(new RouterMlp([.. parameters]), router.Normalization), warmedUp, 0);
        progress?.Invoke(0, warmedUp, best);

        adam = new Adam(parameters.Length);
        var batches = new BatchOrder(objective.Sequences.Count, Math.Min(options.BatchSequences, objective.Sequences.Count), random.NextUInt64());
        var staticRouter = new StaticRouter();
        for (int iteration = 1; iteration <= options.Iterations; iteration++)
        {
            var batch = batches.Next();
            var samplers = new SamplingRouter[options.Samples];
            var sampled = new ScoredSequence[options.Samples][];
            for (int k = 0; k < options.Samples; k++)
            {
                samplers[k] = new SamplingRouter(router, random.NextUInt64());
                sampled[k] = objective.Run(samplers[k], schedule, batch);
            }
            var advantages = Advantages(sampled);
            double guideWeight = Math.Pow(0.5, (iteration - 1) / (options.GuideHalfLife * options.Iterations));

            var gradient = new float[parameters.Length];
            for (int k = 0; k < options.Samples; k++)
            {
                var units = Units(sampled[k], schedule);
                var calls = samplers[k].Calls;
                if (calls.Count != units.Count)
                    throw new InvalidOperationException($"the sampling router was called {calls.Count} times for {units.Count} sequence-blocks");
                double share = 1.0 / (options.Samples * units.Count);
                for (int u = 0; u < units.Count; u++)
                {
                    var unit = units[u];
                    // The calls come in the pruner's order (per run, block by block, sequence by sequence), which
                    // Units follows; a change of that order must fail here, not mix sequences up.
                    if (!unit.Tokens.AsSpan().SequenceEqual(calls[u].Tokens))
                        throw new InvalidOperationException($"sampling call {u} does not hold the features of the sequence-block it was matched with");
                    var logits = calls[u].Logits;
                    var staticKeep = new bool[logits.Length];
                    TokenSelection.Choose(staticRouter, unit.Tokens, unit.Computed.Count(c => c), pruneNewest: false, staticKeep);
                    var logitGradient = new double[logits.Length];
                    AddGuide(logits, staticKeep, guideWeight * share, logitGradient);
                    AddSparsity(logits, unit.Sparsity, SparsityWeight * share, logitGradient);
                    AddDistillation(logits, calls[u].Priorities, unit.Computed, advantages[k][unit.Scored] / (options.Samples * batch.Length), logitGradient);
                    Backward(router, unit.Tokens, logitGradient, gradient);
                }
            }
            adam.Step(parameters, gradient, options.LearningRate * StepScale(iteration, options.Iterations));

            if (iteration % options.ScoreEvery == 0 || iteration == options.Iterations)
            {
                var score = objective.Score(router, schedule);
                if (score.Kl < best.Score.Kl)
                    best = new TrainingResult(new LearnedRouter(new RouterMlp([.. parameters]), router.Normalization), score, iteration);
                progress?.Invoke(iteration, score, best);
            }
        }
        return best;
    }
    /// <summary>
    /// The step size's share at an iteration: rising linearly over the first tenth of the iterations, then
    /// falling linearly to zero. The sampled gradient is noisy, and Adam's first steps are full-sized
    /// whatever the gradient's size, so full steps at once can undo the warm-up; small late steps settle
    /// the router.
    /// </summary>
    private static double StepScale(int iteration, int iterations) =>
        Math.Min(1, iteration / Math.Max(1, 0.1 * iterations)) * (1 - (iteration - 1.0) / iterations);

    /// <summary>
    /// The sequence-blocks of a run in the order the pruner routes them: per run of the model (sequences
    /// batched together), block by block, sequence by sequence. Blocks that were not routed (block 0 under
    /// one-pass routing) have no features and no unit.
    /// </summary>
    private static List<Unit> Units(ScoredSequence[] scored, SparsitySchedule schedule)
    {
        var units = new List<Unit>();
        for (int first = 0; first < scored.Length;)
        {
            var step = scored[first].Step;
            int end = first;
            while (end < scored.Length && scored[end].Step == step) end++;
            for (int b = 0; b < step.Features.Length; b++)
            {
                if (step.Features[b] is not { } features) continue;
                for (int s = first; s < end; s++)
                {
                    int start = scored[s].FirstRow, length = (s + 1 < end ? scored[s + 1].FirstRow : step.Rows) - start;
                    var computed = new bool[length];
                    foreach (int row in step.ComputedRows[b])
                        if (row >= start && row < start + length) computed[row - start] = true;
                    units.Add(new Unit(s, features.AsSpan(start, length).ToArray(), computed, schedule[b]));
                }
            }
            first = end;
        }
        return units;
    }

    /// <summary>Each input's mean and spread over what the router will see: the tokens of every routed block.</summary>
    private static FeatureNormalization FitNormalization(List<Unit> units)
    {
        var inputs = new List<RouterFeatures>();
        foreach (var unit in units)
        {
            var sequenceInputs = new RouterFeatures[unit.Tokens.Length];
            LearnedRouter.Inputs(unit.Tokens, sequenceInputs);
            inputs.AddRange(sequenceInputs);
        }
        return FeatureNormalization.Fit([.. inputs]);
    }

    private static float[] Logits(LearnedRouter router, RouterFeatures[] tokens)
    {
        var logits = new float[tokens.Length];
        router.Prioritize(tokens, logits);
        return logits;
    }

    /// <summary><paramref name="gradient"/> += Σ_i ∂loss/∂l_i · ∂l_i/∂parameters for one sequence-block.</summary>
    private static void Backward(LearnedRouter router, RouterFeatures[] tokens, double[] logitGradient, float[] gradient)
    {
        var inputs = new RouterFeatures[tokens.Length];
        LearnedRouter.Inputs(tokens, inputs);
        Span<float> x = stackalloc float[RouterFeatures.Count];
        for (int i = 0; i < tokens.Length; i++)
        {
            if (logitGradient[i] == 0) continue;
            router.Normalization.Apply(inputs[i], x);
            router.Mlp.AccumulateGradient(x, (float)logitGradient[i], gradient);
        }
    }

    /// <summary>
    /// Per sample and sequence: its KL (summed over the sequence's predictions) less the mean of the other
    /// samples' KL on the same sequence — the leave-one-out baseline, so the advantages of a sequence's
    /// samples sum to zero and the decisions they share cancel — over the batch's mean KL per sequence: a
    /// scale that does not shrink with the advantages, so when the samples stop differing the gradient fades
    /// instead of amplifying noise.
    /// </summary>
    private static double[][] Advantages(ScoredSequence[][] sampled)
    {
        int samples = sampled.Length, sequences = sampled[0].Length;
        double scale = sampled.Average(run => run.Average(s => s.Metrics.KlDivergence));
        var advantages = new double[samples][];
        for (int k = 0; k < samples; k++)
        {
            advantages[k] = new double[sequences];
            for (int s = 0; s < sequences; s++)
            {
                double others = Enumerable.Range(0, samples).Where(j => j != k).Average(j => sampled[j][s].Metrics.KlDivergence);
                advantages[k][s] = scale > 0 ? (sampled[k][s].Metrics.KlDivergence - others) / scale : 0;
            }
        }
        return advantages;
    }

    /// <summary>
    /// Pairwise logistic loss over (kept by the static router, skipped by it), averaged over the pairs, times
    /// <paramref name="weight"/>. The newest token is always computed and takes no part.
    /// </summary>
    private static void AddGuide(float[] logits, bool[] staticKeep, double weight, double[] logitGradient)
    {
        int others = logits.Length - 1, keptOthers = staticKeep.AsSpan(0, others).Count(true);
        long pairs = (long)keptOthers * (others - keptOthers);
        if (pairs == 0) return;
        double scale = weight / pairs;
        for (int i = 0; i < others; i++)
        {
            if (!staticKeep[i]) continue;
            for (int j = 0; j < others; j++)
            {
                if (staticKeep[j]) continue;
                // d/dl_i log(1 + e^−(l_i − l_j)) = −sigmoid(−(l_i − l_j)); the opposite for l_j.
                double pull = scale / (1 + Math.Exp(logits[i] - logits[j]));
                logitGradient[i] -= pull;
                logitGradient[j] += pull;
            }
        }
    }

    /// <summary>max(s_b − (1 − mean sigmoid(l)), 0) over the sequence's tokens, times <paramref name="weight"/>.</summary>
    private static void AddSparsity(float[] logits, double sparsity, double weight, double[] logitGradient)
    {
        var keepProbability = logits.Select(l => 1 / (1 + Math.Exp(-l))).ToArray();
        if (sparsity - (1 - keepProbability.Average()) <= 0) return;
        for (int i = 0; i < logits.Length; i++)
            logitGradient[i] += weight * keepProbability[i] * (1 - keepProbability[i]) / logits.Length;
    }

    /// <summary>
    /// <paramref name="advantage"/> · ∂ log p / ∂l of the sampled skips, p the Plackett–Luce probability of
    /// skipping them in the order of their sampled priorities (lowest first) with weights e^−l: step k picks
    /// token t_k from those left, R_k, with probability e^−l_{t_k} / Σ_{R_k} e^−l, so
    /// ∂ log p / ∂l_i = Σ_k (softmax over R_k of −l)_i − [i = t_k]. The newest token takes no part.
    /// </summary>
    private static void AddDistillation(float[] logits, float[] priorities, bool[] keep, double advantage, double[] logitGradient)
    {
        if (advantage == 0) return;
        int others = logits.Length - 1;
        var skipped = Enumerable.Range(0, others).Where(i => !keep[i]).OrderBy(i => priorities[i]).ToArray();
        var left = new bool[others];
        Array.Fill(left, true);
        var weights = new double[others];
        foreach (int t in skipped)
        {
            double max = double.NegativeInfinity;
            for (int i = 0; i < others; i++) if (left[i]) max = Math.Max(max, -logits[i]);
            double sum = 0;
            for (int i = 0; i < others; i++) if (left[i]) sum += weights[i] = Math.Exp(-logits[i] - max);
            for (int i = 0; i < others; i++) if (left[i]) logitGradient[i] += advantage * weights[i] / sum;
            logitGradient[t] -= advantage;
            left[t] = false;
        }
    }

    /// <summary>Sequence indices in batches, each epoch a fresh permutation.</summary>
    private sealed class BatchOrder(int sequences, int batch, ulong seed)
    {
        private Xoshiro256StarStar _random = new(seed);
        private readonly int[] _order = [.. Enumerable.Range(0, sequences)];
        private int _next = sequences;

        public int[] Next()
        {
            var indices = new int[batch];
            for (int k = 0; k < batch; k++)
            {
                if (_next == _order.Length)
                {
                    for (int i = _order.Length - 1; i > 0; i--)
                    {
                        int j = (int)(_random.NextUInt64() % (ulong)(i + 1));
                        (_order[i], _order[j]) = (_order[j], _order[i]);
                    }
                    _next = 0;
                }
                indices[k] = _order[_next++];
            }
            return indices;
        }
    }

    /// <summary>Adam (Kingma and Ba, 2015) over a flat parameter array; moments in float64.</summary>
    private sealed class Adam(int count)
    {
        private readonly double[] _m = new double[count];
        private readonly double[] _v = new double[count];
        private int _t;

        public void Step(float[] parameters, float[] gradient, double learningRate)
        {
            _t++;
            double correction1 = 1 - Math.Pow(Beta1, _t), correction2 = 1 - Math.Pow(Beta2, _t);
            for (int i = 0; i < parameters.Length; i++)
            {
                _m[i] = Beta1 * _m[i] + (1 - Beta1) * gradient[i];
                _v[i] = Beta2 * _v[i] + (1 - Beta2) * (double)gradient[i] * gradient[i];
                parameters[i] -= (float)(learningRate * (_m[i] / correction1) / (Math.Sqrt(_v[i] / correction2) + AdamEpsilon));
            }
        }
    }
}

/// <summary>
/// The learned router with Gumbel noise on its priorities, for training: a block keeps the top of
/// l − G with G ~ Gumbel(0, 1), that is, it skips a Plackett–Luce sample with weights e^−l. Records every
/// call (tokens, logits, noisy priorities) in order.
/// </summary>
internal sealed class SamplingRouter(LearnedRouter router, ulong seed) : ITokenRouter
{
    public sealed record Call(RouterFeatures[] Tokens, float[] Logits, float[] Priorities);

    private Xoshiro256StarStar _random = new(seed);
    private readonly List<Call> _calls = [];

    public IReadOnlyList<Call> Calls => _calls;

    public RouterKind Kind => RouterKind.Learned;

    public void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority)
    {
        router.Prioritize(tokens, priority);
        var logits = priority.ToArray();
        for (int i = 0; i < tokens.Length; i++)
        {
            // u uniform in (0, 1), never 0 or 1, so the Gumbel draw −log(−log u) is finite.
            double u = ((_random.NextUInt64() >> 11) + 0.5) / (1UL << 53);
            priority[i] -= (float)-Math.Log(-Math.Log(u));
        }
        _calls.Add(new Call(tokens.ToArray(), logits, priority.ToArray()));
    }

    /// <summary>Training never prunes the newest token.</summary>
    public bool KeepsNewest(in RouterFeatures newest, float priority) => true;
}
