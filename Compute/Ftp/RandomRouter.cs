using FtpCluster.Compute.Numerics;

namespace FtpCluster.Compute.Ftp;

/// <summary>
/// The baseline: each block skips a uniformly random subset of its quota's size, so it follows the same
/// schedule as any other router. Deterministic for a seed and a sequence of calls.
/// </summary>
public sealed class RandomRouter(ulong seed) : ITokenRouter
{
    private Xoshiro256StarStar _random = new(seed);

    public ulong Seed { get; } = seed;

    public RouterKind Kind => RouterKind.Random;

    /// <summary>Independent uniform priorities: the top k of them are a uniform k-subset.</summary>
    public void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority)
    {
        for (int i = 0; i < tokens.Length; i++) priority[i] = (float)_random.NextUnitInterval();
    }

    /// <summary>Kept with probability 1 − s_b, the schedule's rate.</summary>
    public bool KeepsNewest(in RouterFeatures newest, float priority) => _random.NextUnitInterval() > newest.Sparsity;
}
