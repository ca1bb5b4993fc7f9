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
    /// The uniform schedule whose mean is <paramref name="mean"/> under <paramref name="routing"/>. Block by
    /// block, every block skips the mean. A one-pass plan is made after block 0, which computes every token
    /// (<see cref="OnePassPlan.Decide"/>), so there block 0 is dense and the other blocks share the target:
    /// s_b = mean · L / (L − 1), and the mean over all L blocks is still the target.
    /// </summary>
    public static SparsitySchedule Uniform(double mean, int layers, RoutingMode routing)
    {
        if (routing == RoutingMode.Block || mean == 0) return Uniform(mean, layers);
        if (layers < 2) throw new ArgumentException("one-pass routing prunes only after block 0: a one-layer model cannot be made sparse");
        double others = mean * layers / (layers - 1);
        if (others >= 1)
            throw new ArgumentException($"a mean sparsity of {mean} under one-pass routing needs {others:0.###} at each of blocks 1 to {layers - 1}: at least one token must be kept");
        return new SparsitySchedule(Enumerable.Range(0, layers).Select(b => b == 0 ? 0 : others));
    }

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
