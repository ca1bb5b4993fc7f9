using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Ftp;

public enum RoutingMode
{
    /// <summary>Each block is routed with the features as they are after the block before it (one process only).</summary>
    Block,

    /// <summary>Block 0 computes every row, then one <see cref="OnePassPlan"/> decides every later block (what the cluster runs).</summary>
    OnePass,
}

/// <summary>The names of the routing modes in reports and on the command line: "block" and "one-pass".</summary>
public static class RoutingModes
{
    public static IReadOnlyList<string> Names { get; } = ["block", "one-pass"];

    public static string Name(RoutingMode mode) => mode switch
    {
        RoutingMode.Block => "block",
        RoutingMode.OnePass => "one-pass",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown routing mode"),
    };

    /// <exception cref="ArgumentException">Not one of <see cref="Names"/>.</exception>
    public static RoutingMode Parse(string name) => name switch
    {
        "block" => RoutingMode.Block,
        "one-pass" => RoutingMode.OnePass,
        _ => throw new ArgumentException($"unknown routing '{name}' (known: {string.Join(", ", Names)})", nameof(name)),
    };
}

public sealed record RoutingOptions
{
    public RoutingMode Mode { get; init; } = RoutingMode.Block;

    /// <summary>
    /// One-pass only: the stage boundaries. When set, the plan keeps one set of rows per stage segment
    /// (see <see cref="OnePassPlan.Decide"/>), so a token skips whole stages and traffic falls.
    /// </summary>
    public IReadOnlyList<LayerRange>? Stages { get; init; }

    /// <summary>
    /// Decode pruning: let the router skip a sequence's newest token (<see cref="ITokenRouter.KeepsNewest"/>).
    /// Off by default, so the token whose output generation uses is always computed.
    /// </summary>
    public bool PruneNewest { get; init; }
}

/// <summary>
/// A sequence routed step by step: its KV cache and each of its tokens' latest attention score (from the
/// last block that computed it; under one-pass routing, from block 0, where the plan was made), against
/// which later steps' tokens are ranked.
/// </summary>
public sealed class RoutedSequence
{
    private readonly List<float> _latestScores = [];

    internal RoutedSequence(KvCache cache)
    {
        Cache = cache;
    }

    public KvCache Cache { get; }

    /// <summary>Tokens run so far; the next step's first token takes this position.</summary>
    public int Length => _latestScores.Count;

    public IReadOnlyList<float> LatestScores => _latestScores;

    internal void Append(ReadOnlySpan<float> latestScores)
    {
        foreach (float s in latestScores) _latestScores.Add(s);
    }
}

/// <summary>Which rows of a step get logits.</summary>
public enum LogitRows
{
    /// <summary>Every row: [rows, vocab], what scoring needs.</summary>
    Every,

    /// <summary>Each sequence's newest row: [sequences, vocab], all that generation needs.</summary>
    Newest,
}

/// <summary>What a routed step computed. Rows are the step's new tokens, sequence by sequence.</summary>
public sealed class RoutedStep
{
    public required int Rows { get; init; }

    /// <summary>
    /// [Rows, vocab]: the logits of every row, computed or not; with <see cref="LogitRows.Newest"/>,
    /// [sequences, vocab]: those of each sequence's newest row.
    /// </summary>
    public required float[] Logits { get; init; }

    /// <summary>Per block, the sorted rows it computed.</summary>
    public required int[][] ComputedRows { get; init; }

    /// <summary>
    /// [blocks, Rows]: each row's attention score per block, NaN where the block skipped it. Under one-pass
    /// routing only block 0's are computed (the plan is made from them alone); later blocks' are NaN.
    /// </summary>
    public required float[] AttentionScores { get; init; }

    /// <summary>
    /// Per block, the features its rows were chosen from (what calibration trains the router on); null for
    /// block 0 under one-pass routing, which is not routed.
    /// </summary>
    public required RouterFeatures[]?[] Features { get; init; }

    /// <summary>The one-pass plan the step ran; null under block-by-block routing.</summary>
    public OnePassPlan? Plan { get; init; }

    /// <summary>The fraction of the rows block <paramref name="block"/> skipped.</summary>
    public double Sparsity(int block) => Rows == 0 ? 0 : 1 - (double)ComputedRows[block].Length / Rows;

    /// <summary>The mean over blocks of <see cref="Sparsity"/>.</summary>
    public double MeanSparsity => Enumerable.Range(0, ComputedRows.Length).Average(Sparsity);
}

/// <summary>
/// FTP in one process: a whole model (every layer, embedding and LM head) run with a router deciding, per
/// block and per token, which tokens each block computes. Not thread-safe, like the stage it wraps.
/// </summary>
public sealed class TokenPruner
{
    public TokenPruner(TransformerStage model, SparsitySchedule schedule, ITokenRouter router)
    {
        var spec = model.Slice.Spec;
        if (spec.FirstLayer != 0 || spec.EndLayer != model.Config.Layers || !spec.Embedding || !spec.Head)
            throw new ArgumentException($"a token pruner needs the whole model; this stage holds layers [{spec.FirstLayer}, {spec.EndLayer})"
                + (spec.Embedding ? "" : " without the embedding") + (spec.Head ? "" : " without the LM head"));
        schedule.RequireBlocks(model.Config.Layers);
        Model = model;
        Schedule = schedule;
        Router = router;
    }

    public TransformerStage Model { get; }
    public SparsitySchedule Schedule { get; }
    public ITokenRouter Router { get; }

    public RoutedSequence NewSequence() => new(Model.NewCache());

    /// <summary>Generation with every step routed: the same loop, stop rules and sampling as <see cref="Generator.Generate"/>.</summary>
    public GenerationResult Generate(int[] prompt, GenerationOptions options, RoutingOptions routing, Action<int>? onToken = null)
    {
        var c = Model.Config;
        var sampler = new Sampler(options.Sampling);
        var sequence = NewSequence();
        ValueTask<int> Step(int[] tokens, int firstPosition, int draw)
        {
            var step = this.Step([sequence], [tokens], routing);
            return ValueTask.FromResult(sampler.Sample(step.Logits.AsSpan((step.Rows - 1) * c.VocabSize, c.VocabSize), draw));
        }
        var pending = Generator.GenerateAsync(prompt, c.MaxSeqLen, options, Step, onToken);
        // Every step above completes synchronously, so the loop has finished by now.
        return pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Runs whole sequences from position 0, all in one batch.</summary>
    public RoutedStep Run(IReadOnlyList<int[]> sequences, RoutingOptions options) =>
        Step(sequences.Select(_ => NewSequence()).ToArray(), sequences, options);

    /// <summary>
    /// Runs the new <paramref name="tokens"/> of each sequence (a prefill, a chunk, or one decode token),
    /// continuing where its cache left off. Each sequence's new rows are routed as a group: a block keeps
    /// <see cref="SparsitySchedule.Kept"/>(b, new rows) of them, ranked against all the sequence's tokens.
    /// </summary>
    public RoutedStep Step(IReadOnlyList<RoutedSequence> sequences, IReadOnlyList<int[]> tokens, RoutingOptions options,
        LogitRows logitRows = LogitRows.Every)
    {
        if (sequences.Count != tokens.Count)
            throw new ArgumentException($"{tokens.Count} token lists for {sequences.Count} sequences");
        var c = Model.Config;
        if (options.Stages is not null)
        {
            if (options.Mode != RoutingMode.OnePass) throw new ArgumentException("stage segments apply to one-pass routing only");
            LayerRange.RequireCover(options.Stages, c.Layers);
        }

        var rows = new List<TokenRow>();
        var ids = new List<int>();
        var groups = new SequenceRows[sequences.Count];
        for (int s = 0; s < sequences.Count; s++)
        {
            var sequence = sequences[s];
            if (tokens[s].Length == 0) throw new ArgumentException($"sequence {s} has no new tokens");
            if (sequence.Length + tokens[s].Length > c.MaxSeqLen)
                throw new ArgumentException($"sequence {s} would reach {sequence.Length + tokens[s].Length} tokens, more than the model's context of {c.MaxSeqLen}");
            groups[s] = new SequenceRows(rows.Count, tokens[s].Length, [.. sequence.LatestScores]);
            rows.AddRange(TokenRow.Consecutive(sequence.Cache, sequence.Length, tokens[s].Length));
            ids.AddRange(tokens[s]);
        }
        int n = rows.Count, blocks = c.Layers;
        var batch = new RoutingBatch(rows.Select(r => r.Position).ToArray(), groups);
        var scores = new float[blocks * n];
        var computed = new int[blocks][];
        var features = new RouterFeatures[]?[blocks];
        OnePassPlan? plan = null;

        var hidden = new float[n * c.Dim];
        Model.Embed(ids.ToArray(), hidden);
        if (options.Mode == RoutingMode.OnePass)
        {
            // The batch keeps the scores the plan saw: later steps rank against what the first block knew,
            // as a pipeline's first stage does (it never sees later stages' scores).
            plan = OnePassPlan.ForwardFirstStage(Model, rows.ToArray(), hidden, batch, Schedule, Router, options, scores, features);
            for (int b = 0; b < blocks; b++) computed[b] = plan.BlockRows[b];
        }
        else
        {
            int[]? ChooseRows(int b)
            {
                if (b > 0) batch.Update(scores.AsSpan((b - 1) * n, n));
                features[b] = batch.Features(Schedule[b]);
                computed[b] = batch.Choose(Router, features[b], Schedule[b], options.PruneNewest);
                return computed[b].Length == n ? null : computed[b];
            }
            Model.ForwardRouted(rows.ToArray(), hidden, ChooseRows, scores);
            batch.Update(scores.AsSpan((blocks - 1) * n, n));
        }

        for (int s = 0; s < sequences.Count; s++)
            sequences[s].Append(batch.LatestScores.Slice(groups[s].FirstRow, groups[s].Count));
        float[] logits;
        if (logitRows == LogitRows.Every)
        {
            logits = new float[n * c.VocabSize];
            Model.Logits(hidden, n, logits);
        }
        else
        {
            var newest = new float[groups.Length * c.Dim];
            for (int s = 0; s < groups.Length; s++)
                hidden.AsSpan((groups[s].FirstRow + groups[s].Count - 1) * c.Dim, c.Dim).CopyTo(newest.AsSpan(s * c.Dim));
            logits = new float[groups.Length * c.VocabSize];
            Model.Logits(newest, groups.Length, logits);
        }
        return new RoutedStep
        {
            Rows = n, Logits = logits, ComputedRows = computed, AttentionScores = scores, Features = features, Plan = plan,
        };
    }
}
