using System.Numerics;
using System.Text;
using FtpCluster.Compute.Numerics;

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
