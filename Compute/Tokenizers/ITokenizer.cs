namespace FtpCluster.Compute.Tokenizers;

/// <summary>Text to token ids and back, for one model's vocabulary.</summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or -1 when the vocabulary has none.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id, or -1 when the vocabulary has none.</summary>
    int EosId { get; }

    /// <summary>Token ids of <paramref name="text"/>, with BOS first when <paramref name="addBos"/> and the vocabulary has one.</summary>
    int[] Encode(string text, bool addBos = true);

    /// <summary>The text of a sequence of ids (special tokens such as BOS and EOS produce no text).</summary>
    string Decode(ReadOnlySpan<int> ids);
}
