using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Inference;

/// <summary>
/// An independent float64 forward pass, written plainly for tests: whole sequences only, no KV cache,
/// optional per-block token subsets (a skipped token is absent from the block: neither query nor key).
/// </summary>
public sealed class ReferenceModel
{
    private readonly ModelConfig _c;
    private readonly ICheckpoint _checkpoint;

    public ReferenceModel(ICheckpoint checkpoint)
    {
        _checkpoint = checkpoint;
        _c = checkpoint.Config;
    }

    private double[] Vector(TensorRole role, int layer = -1) =>
        _checkpoint.Find(role, layer)!.ToFloatArray().Select(f => (double)f).ToArray();

    /// <summary>Logits [ids.Length][vocab]; subsets[b] lists the positions block b computes (null: all).</summary>
    public double[][] Logits(int[] ids, int[]?[]? subsets = null) => Logits(ids, subsets, out _);

    /// <param name="attentionScores">
    /// [layer][position]: the attention the token received in that block, averaged over heads and over the
    /// queries that could see it (itself and the later tokens the block computed); NaN where it was skipped.
    /// </param>
    public double[][] Logits(int[] ids, int[]?[]? subsets, out double[][] attentionScores)
    {
        int n = ids.Length, d = _c.Dim;
        attentionScores = new double[_c.Layers][];
        var emb = Vector(TensorRole.TokenEmbedding);
        var x = new double[n][];
        for (int t = 0; t < n; t++) x[t] = emb.AsSpan(ids[t] * d, d).ToArray();
        for (int l = 0; l < _c.Layers; l++)
        {
            var rows = subsets?[l] ?? Enumerable.Range(0, n).ToArray();
            var received = new double[rows.Length];
            var updated = Block(l, rows.Select(t => x[t]).ToArray(), rows, received);
            attentionScores[l] = Enumerable.Repeat(double.NaN, n).ToArray();
            for (int i = 0; i < rows.Length; i++)
            {
                x[rows[i]] = updated[i];
                attentionScores[l][rows[i]] = received[i] / (_c.Heads * (rows.Length - i));
            }
        }
        var norm = Vector(TensorRole.FinalNorm);
        var head = Vector(TensorRole.LmHead);
        return x.Select(row => MatVec(head, RmsNorm(row, norm), _c.VocabSize)).ToArray();
    }

    /// <summary>The hidden states of every token entering each block, then leaving the last: [layers + 1][ids.Length][dim].</summary>
    public double[][][] HiddenStates(int[] ids)
    {
        int n = ids.Length, d = _c.Dim;
        var emb = Vector(TensorRole.TokenEmbedding);
        var states = new double[_c.Layers + 1][][];
        states[0] = Enumerable.Range(0, n).Select(t => emb.AsSpan(ids[t] * d, d).ToArray()).ToArray();
        var positions = Enumerable.Range(0, n).ToArray();
        for (int l = 0; l < _c.Layers; l++) states[l + 1] = Block(l, states[l], positions);
        return states;
    }

    /// <param name="received">When given, receives per token the attention it received, summed over heads and queries.</param>
    private double[][] Block(int l, double[][] x, int[] positions, double[]? received = null)
    {
        int n = x.Length, hd = _c.HeadDim, group = _c.Heads / _c.KvHeads;
        var wq = Vector(TensorRole.Query, l);
        var wk = Vector(TensorRole.Key, l);
        var wv = Vector(TensorRole.Value, l);
        var wo = Vector(TensorRole.AttentionOutput, l);
        var attNorm = Vector(TensorRole.AttentionNorm, l);
        double[]? bq = _c.AttentionBias ? Vector(TensorRole.QueryBias, l) : null;
        double[]? bk = _c.AttentionBias ? Vector(TensorRole.KeyBias, l) : null;
        double[]? bv = _c.AttentionBias ? Vector(TensorRole.ValueBias, l) : null;

        var q = new double[n][];
        var k = new double[n][];
        var v = new double[n][];
        for (int t = 0; t < n; t++)
        {
            var xn = RmsNorm(x[t], attNorm);
            q[t] = Rope(AddBias(MatVec(wq, xn, _c.QueryDim), bq), positions[t]);
            k[t] = Rope(AddBias(MatVec(wk, xn, _c.KvDim), bk), positions[t]);
            v[t] = AddBias(MatVec(wv, xn, _c.KvDim), bv);
        }
        var output = new double[n][];
        for (int t = 0; t < n; t++)
        {
            var att = new double[_c.QueryDim];
            for (int h = 0; h < _c.Heads; h++)
            {
                int kvh = h / group;
                var scores = new double[t + 1];
                for (int j = 0; j <= t; j++)
                {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[t][h * hd + i] * k[j][kvh * hd + i];
                    scores[j] = s / Math.Sqrt(hd);
                }
                double max = scores.Max(), sum = 0;
                for (int j = 0; j <= t; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                for (int j = 0; j <= t; j++)
                {
                    if (received is not null) received[j] += scores[j] / sum;
                    for (int i = 0; i < hd; i++) att[h * hd + i] += scores[j] / sum * v[j][kvh * hd + i];
                }
            }
            var h1 = Add(x[t], MatVec(wo, att, _c.Dim));
            var xn = RmsNorm(h1, Vector(TensorRole.FfnNorm, l));
            var gate = MatVec(Vector(TensorRole.Gate, l), xn, _c.HiddenDim);
            var up = MatVec(Vector(TensorRole.Up, l), xn, _c.HiddenDim);
            for (int i = 0; i < gate.Length; i++) gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
            output[t] = Add(h1, MatVec(Vector(TensorRole.Down, l), gate, _c.Dim));
        }
        return output;
    }

    private double[] Rope(double[] x, int position)
    {
        int hd = _c.HeadDim, half = hd / 2;
        var r = (double[])x.Clone();
        for (int h = 0; h < x.Length / hd; h++)
            for (int i = 0; i < half; i++)
            {
                double angle = position * Frequency(i);
                (int a, int b) = _c.RopeLayout == RopeLayout.AdjacentPairs ? (2 * i, 2 * i + 1) : (i, i + half);
                double x0 = x[h * hd + a], x1 = x[h * hd + b];
                r[h * hd + a] = x0 * Math.Cos(angle) - x1 * Math.Sin(angle);
                r[h * hd + b] = x0 * Math.Sin(angle) + x1 * Math.Cos(angle);
            }
        return r;
    }

    /// <summary>θ_i, with Llama 3.1's scaling: long wavelengths slowed by the factor, a smooth band between.</summary>
    private double Frequency(int i)
    {
        double freq = Math.Pow(_c.RopeTheta, -2.0 * i / _c.HeadDim);
        if (_c.RopeScaling is not { } s) return freq;
        double wavelength = 2 * Math.PI / freq;
        double longest = s.OriginalMaxPositions / s.LowFreqFactor, shortest = s.OriginalMaxPositions / s.HighFreqFactor;
        if (wavelength < shortest) return freq;
        if (wavelength > longest) return freq / s.Factor;
        double t = (s.OriginalMaxPositions / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return t * freq + (1 - t) * freq / s.Factor;
    }

    private double[] RmsNorm(double[] x, double[] w)
    {
        double ms = x.Sum(e => e * e) / x.Length;
        double scale = 1 / Math.Sqrt(ms + _c.RmsNormEps);
        return x.Select((e, i) => e * scale * w[i]).ToArray();
    }

    private static double[] MatVec(double[] w, double[] x, int rows)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int i = 0; i < x.Length; i++) s += w[(long)r * x.Length + i] * x[i];
            y[r] = s;
        }
        return y;
    }

    private static double[] AddBias(double[] x, double[]? b) => b is null ? x : Add(x, b);

    private static double[] Add(double[] a, double[] b) => a.Select((e, i) => e + b[i]).ToArray();
}
