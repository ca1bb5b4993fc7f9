using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Tests.Evaluation;

/// <summary>One token per Latin-1 character (3 + its code; BOS 1 first), for data tests that need no real tokenizer.</summary>
internal sealed class FakeTokenizer : ITokenizer
{
    public int VocabSize => 3 + 256;
    public int BosId => 1;
    public int EosId => 2;

    public int[] Encode(string text, bool addBos = true)
    {
        if (text.Any(ch => ch > 255)) throw new ArgumentException("the fake tokenizer knows Latin-1 only");
        return [.. (addBos ? [BosId] : Array.Empty<int>()), .. text.Select(ch => 3 + ch)];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var text = new System.Text.StringBuilder();
        foreach (int id in ids)
            if (id >= 3) text.Append((char)(id - 3));
        return text.ToString();
    }
}
