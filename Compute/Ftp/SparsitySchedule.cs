namespace FtpCluster.Compute.Ftp;

/// <summary>
/// Per block b, the target sparsity s_b: the fraction of a step's tokens the block skips. Found by
/// calibration (or uniform for a baseline). Immutable.
/// </summary>
public sealed class SparsitySchedule
{
    private readonly double[] _sparsity;

    /// <exception cref="ArgumentException">No blocks, or a sparsity outside [0, 1).</exception>
    public SparsitySchedule(IEnumerable<double> sparsityPerBlock)
    {
        _sparsity = sparsityPerBlock.ToArray();
        if (_sparsity.Length == 0)
            throw new ArgumentException("a sparsity schedule needs at least one block");
        for (int b = 0; b < _sparsity.Length; b++)
            if (!(_sparsity[b] >= 0 && _sparsity[b] < 1))
                throw new ArgumentException($"block {b}: sparsity {_sparsity[b]} is outside [0, 1) (a block must keep some tokens)");
    }

    /// <summary>The same sparsity <paramref name="sparsity"/> at every one of <paramref name="layers"/> blocks.</summary>
    public static SparsitySchedule Uniform(double sparsity, int layers)
    {
        if (layers <= 0) throw new ArgumentException($"a model has at least one layer, got {layers}");
        return new SparsitySchedule(Enumerable.Repeat(sparsity, layers));
    }

    /// <summary>
    /// A uniform schedule for one-pass routing, whose plan is made after block 0 and so never prunes it:
    /// block 0 is dense and blocks 1..L−1 share the rest, s' = s · L / (L − 1), so that the mean over all
    /// L blocks — what one-pass routing achieves — is <paramref name="meanSparsity"/>. (Block-by-block
    /// routing follows the same schedule.) Every stage segment's mean after block 0 is s', so with stage
    /// boundaries each segment skips the same share.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two layers, or s' outside [0, 1).</exception>
    public static SparsitySchedule DenseFirstBlock(double meanSparsity, int layers) => DensePrefix(meanSparsity, layers, 1);

    /// <summary>
    /// A schedule of mean <paramref name="mean"/> that saves traffic on a pipeline of <paramref name="stages"/>
    /// equal stages: a token skipped by the first stage's blocks still crosses to the later stages that
    /// compute it, so those skips save compute but no bytes. Here the first blocks are dense and every later
    /// block skips the same s; the dense prefix is as long as the first stage of the balanced split that
    /// the planner then makes (costs 1 and 1 − s): with d dense blocks of L, d = L(1 − mean)/stages and
    /// s = mean·L/(L − d).
    /// </summary>
    public static SparsitySchedule TrafficAware(double mean, int layers, int stages)
    {
        if (stages < 1 || stages > layers || layers < 2) throw new ArgumentException($"{stages} stages cannot split {layers} layers into a dense prefix and the rest");
        int dense = Math.Clamp((int)Math.Round(layers * (1 - mean) / stages, MidpointRounding.AwayFromZero), 1, layers - 1);
        return DensePrefix(mean, layers, dense);
    }

    /// <summary>Blocks [0, <paramref name="dense"/>) dense, the others sharing the mean <paramref name="mean"/> equally.</summary>
    public static SparsitySchedule DensePrefix(double mean, int layers, int dense)
    {
        if (layers < 2 || dense < 1 || dense >= layers)
            throw new ArgumentException($"a schedule of {layers} layers cannot keep {dense} dense and prune the rest (it needs at least two layers and one of each)");
        double later = mean * layers / (layers - dense);
        if (!(later >= 0 && later < 1))
            throw new ArgumentException($"a mean sparsity of {mean} over {layers} blocks with {dense} dense needs {later:0.###} at the other blocks, outside [0, 1)");
        return new SparsitySchedule(Enumerable.Range(0, layers).Select(b => b < dense ? 0.0 : later));
    }

    /// <summary>
    /// The uniform schedule whose mean is <paramref name="mean"/> under <paramref name="routing"/>: block by
    /// block, every block skips the mean; a one-pass plan is made after block 0, which computes every token
    /// (<see cref="OnePassPlan.Decide"/>), so there it is <see cref="DenseFirstBlock"/>.
    /// </summary>
    public static SparsitySchedule Uniform(double mean, int layers, RoutingMode routing) =>
        routing == RoutingMode.Block || mean == 0 ? Uniform(mean, layers) : DenseFirstBlock(mean, layers);

    public int Blocks => _sparsity.Length;

    /// <summary>s_b of block <paramref name="block"/>.</summary>
    public double this[int block] => _sparsity[block];

    public IReadOnlyList<double> PerBlock => _sparsity;

    /// <summary>The mean of s_b over the blocks: the model's target sparsity.</summary>
    public double Mean => _sparsity.Average();

    /// <summary>The mean of s_b over blocks [first, end): a stage segment's sparsity.</summary>
    public double MeanOf(int first, int end)
    {
        if (first < 0 || end > Blocks || first >= end)
            throw new ArgumentOutOfRangeException(nameof(first), $"blocks [{first}, {end}) are not a non-empty range of the {Blocks} blocks");
        return _sparsity.Skip(first).Take(end - first).Average();
    }

    /// <summary>How many of <paramref name="tokens"/> tokens block <paramref name="block"/> keeps: see <see cref="KeptOf"/>.</summary>
    public int Kept(int block, int tokens) => KeptOf(tokens, _sparsity[block]);

    /// <summary>
    /// How many of <paramref name="tokens"/> tokens are kept at <paramref name="sparsity"/>: the block skips
    /// round(s · n) tokens, halves rounded up, so the skipped count is the nearest to the target — but at
    /// least one token is always kept. Hence a one-token decode step is never pruned by count (with s &lt; 1).
    /// </summary>
    public static int KeptOf(int tokens, double sparsity)
    {
        if (tokens <= 0) return 0;
        int skipped = (int)Math.Round(sparsity * tokens, MidpointRounding.AwayFromZero);
        return Math.Max(1, tokens - skipped);
    }

    /// <summary>Throws unless this schedule has one entry per layer of a <paramref name="layers"/>-layer model.</summary>
    public void RequireBlocks(int layers)
    {
        if (Blocks != layers)
            throw new ArgumentException($"the sparsity schedule has {Blocks} blocks but the model has {layers} layers");
    }

    public override string ToString() => "[" + string.Join(", ", _sparsity.Select(s => s.ToString("0.###"))) + "]";
}
