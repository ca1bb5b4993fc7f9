namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// The sampler seed of each sample of a set drawn with one base seed (<c>generate --samples N --seed S</c>).
/// Sample i's seed is a hash of (S, i), not S + i: with S + i, sets drawn with seeds 1 and 2 would share all
/// but one sample, and a calibration set and an evaluation set must not overlap. With the hash, two base
/// seeds give unrelated streams (a collision of the 32-bit sampler seeds is a 2^-32 chance per pair).
/// </summary>
public static class SampleSeeds
{
    public static int For(int seed, int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "a sample index is not negative");
        // splitmix64's finaliser over (seed, index) packed into one 64-bit word: a bijection, so distinct pairs
        // give distinct 64-bit values, of which the sampler takes 32 bits.
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return unchecked((int)(z ^ (z >> 31)));
    }
}
