using System.Numerics;
using System.Text;

namespace FtpCluster.Compute.Models;

/// <summary>
/// The random values of one synthetic tensor, produced in row-major order in as many chunks as the
/// caller likes. They depend only on the seed and the tensor's name, so a model comes out the same
/// however it is sharded, ordered or chunked.
/// </summary>
/// <remarks>
/// Token embeddings are N(0, 1), like the activations a real embedding feeds; every other matrix is
/// N(0, 1/fan_in) so activations keep their scale through the blocks; norm weights are 1 + 0.1·N(0, 1)
/// and biases 0.1·N(0, 1), small departures from the identity that still exercise every multiply.
/// </remarks>
internal sealed class SyntheticTensorValues
{
    private readonly double _mean;
    private readonly double _std;
    private Xoshiro256StarStar _random;
    private double _spare;
    private bool _hasSpare;

    public SyntheticTensorValues(ulong seed, string name, TensorRole role, long[] shape)
    {
        _random = new Xoshiro256StarStar(seed ^ Fnv1a64(name));
        (_mean, _std) = role switch
        {
            TensorRole.TokenEmbedding => (0.0, 1.0),
            TensorRole.AttentionNorm or TensorRole.FfnNorm or TensorRole.FinalNorm => (1.0, 0.1),
            TensorRole.QueryBias or TensorRole.KeyBias or TensorRole.ValueBias => (0.0, 0.1),
            _ => (0.0, 1.0 / Math.Sqrt(shape[^1])),
        };
    }

    /// <summary>The next <c>destination.Length</c> values of the tensor.</summary>
    public void Fill(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
            destination[i] = (float)(_mean + _std * NextGaussian());
    }

    /// <summary>Box–Muller: two uniforms give two independent standard normals; the second is kept for the next call.</summary>
    private double NextGaussian()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }
        double radius = Math.Sqrt(-2.0 * Math.Log(_random.NextUnitInterval()));
        var (sin, cos) = Math.SinCos(2.0 * Math.PI * _random.NextUnitInterval());
        _spare = radius * sin;
        _hasSpare = true;
        return radius * cos;
    }

    /// <summary>FNV-1a over the UTF-8 name: stable across runs, unlike string.GetHashCode.</summary>
    private static ulong Fnv1a64(string text)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
            hash = (hash ^ b) * 0x100000001B3UL;
        return hash;
    }
}

/// <summary>xoshiro256** (Blackman and Vigna, 2018), seeded through splitmix64. Fast and reproducible; not cryptographic.</summary>
internal struct Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro256StarStar(ulong seed)
    {
        // splitmix64 spreads any seed, 0 included, over a state that is never all zeros.
        _s0 = SplitMix64(ref seed);
        _s1 = SplitMix64(ref seed);
        _s2 = SplitMix64(ref seed);
        _s3 = SplitMix64(ref seed);
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong shifted = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= shifted;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in (0, 1]: never 0, so its logarithm is finite.</summary>
    public double NextUnitInterval() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
