using System.Runtime.InteropServices;

namespace FtpCluster.Compute.Models;

/// <summary>
/// Writes a checkpoint's weights as a llama2.c file (float32; layout in <see cref="Llama2cCheckpoint"/>),
/// tensor by tensor in chunks. Only models the llama2.c header can describe are accepted: no biases,
/// head dim = dim / heads, RoPE theta 10000 without scaling, RMSNorm eps 1e-5.
/// </summary>
public static class Llama2cWriter
{
    private const int ChunkValues = 1 << 16;

    public static void Write(ICheckpoint source, string path)
    {
        var c = source.Config;
        RefuseUnrepresentable(c, path);

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        // A negative vocab size tells llama2.c that a separate classifier follows the weights.
        int[] header = [c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.TiedEmbeddings ? c.VocabSize : -c.VocabSize, c.MaxSeqLen];
        stream.Write(MemoryMarshal.AsBytes(header.AsSpan()));

        var buffer = new float[Math.Max(ChunkValues, c.HeadDim * c.Dim)];
        void Copy(TensorRole role, int layer = -1) =>
            CopyTensor(stream, CheckpointTensors.Require(source, role, layer), buffer);
        void CopyRopeRows(TensorRole role, int heads)
        {
            for (int layer = 0; layer < c.Layers; layer++)
            {
                var tensor = CheckpointTensors.Require(source, role, layer);
                if (c.RopeLayout == RopeLayout.Halves)
                    CopyHalvesAsAdjacentPairs(stream, tensor, heads, c.HeadDim, buffer);
                else
                    CopyTensor(stream, tensor, buffer);
            }
        }
        void CopyEveryLayer(TensorRole role)
        {
            for (int layer = 0; layer < c.Layers; layer++)
                Copy(role, layer);
        }

        Copy(TensorRole.TokenEmbedding);
        CopyEveryLayer(TensorRole.AttentionNorm);
        CopyRopeRows(TensorRole.Query, c.Heads);
        CopyRopeRows(TensorRole.Key, c.KvHeads);
        CopyEveryLayer(TensorRole.Value);
        CopyEveryLayer(TensorRole.AttentionOutput);
        CopyEveryLayer(TensorRole.FfnNorm);
        CopyEveryLayer(TensorRole.Gate);
        CopyEveryLayer(TensorRole.Down);
        CopyEveryLayer(TensorRole.Up);
        Copy(TensorRole.FinalNorm);
        WriteLegacyRopeTables(stream, c);
        if (!c.TiedEmbeddings)
            Copy(TensorRole.LmHead);
    }

    private static void RefuseUnrepresentable(ModelConfig c, string path)
    {
        void Refuse(string why) => throw new ModelFormatException(path, null, $"cannot write this model as llama2.c: {why}");
        if (c.AttentionBias)
            Refuse($"llama2.c has no attention biases, and {c.Architecture} has q/k/v biases");
        if (c.QueryDim != c.Dim)
            Refuse($"llama2.c derives head dim from dim / heads ({c.Dim} / {c.Heads}), but this model's head dim is {c.HeadDim}");
        if (c.RopeTheta != 10000f)
            Refuse($"the llama2.c header has no rope_theta (readers assume 10000), and this model uses {c.RopeTheta}");
        if (c.RopeScaling is not null || c.RopeFrequencyFactors is not null)
            Refuse("the llama2.c header has no RoPE scaling, and this model uses llama3 scaling");
        if (c.RmsNormEps != 1e-5f)
            Refuse($"the llama2.c header has no rms_norm_eps (readers assume 1e-5), and this model uses {c.RmsNormEps}");
    }

    private static void CopyTensor(FileStream stream, WeightTensor tensor, float[] buffer)
    {
        for (long start = 0; start < tensor.ElementCount; start += buffer.Length)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, tensor.ElementCount - start));
            tensor.CopyTo(chunk, start);
            stream.Write(MemoryMarshal.AsBytes(chunk));
        }
    }

    /// <summary>
    /// Hugging Face rotates dimension i of a head with i + headDim/2; llama2.c rotates 2i with 2i + 1.
    /// So within each head, llama2.c row 2i is Hugging Face row i and row 2i + 1 is row headDim/2 + i.
    /// </summary>
    private static void CopyHalvesAsAdjacentPairs(FileStream stream, WeightTensor tensor, int heads, int headDim, float[] buffer)
    {
        int cols = tensor.Cols;
        var head = buffer.AsSpan(0, headDim * cols);
        for (int h = 0; h < heads; h++)
        {
            tensor.CopyTo(head, (long)h * headDim * cols);
            for (int row = 0; row < headDim; row++)
            {
                int sourceRow = row % 2 == 0 ? row / 2 : headDim / 2 + row / 2;
                stream.Write(MemoryMarshal.AsBytes(head.Slice(sourceRow * cols, cols)));
            }
        }
    }

    /// <summary>
    /// llama2.c's two legacy tables [seq_len, headDim/2]: cos then sin of position × θ_i. Current readers
    /// ignore them, but older ones use them, so they hold the real values rather than zeros.
    /// </summary>
    private static void WriteLegacyRopeTables(FileStream stream, ModelConfig c)
    {
        int pairs = c.HeadDim / 2;
        var row = new float[pairs];
        foreach (bool sine in new[] { false, true })
        {
            for (int position = 0; position < c.MaxSeqLen; position++)
            {
                for (int i = 0; i < pairs; i++)
                {
                    double angle = position / Math.Pow(c.RopeTheta, 2.0 * i / c.HeadDim);
                    row[i] = (float)(sine ? Math.Sin(angle) : Math.Cos(angle));
                }
                stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
        }
    }
}
