using FtpCluster.Compute.Models;
using Microsoft.ML.Tokenizers;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// A SentencePiece <c>.model</c> file (protobuf), such as Llama 2's tokenizer.model, read and run by
/// Microsoft.ML.Tokenizers. Two known differences from llama2.c on the same vocabulary:
/// <list type="bullet">
/// <item>Encoding: the library (2.0.1) merges equal-score pairs rightmost first where SentencePiece itself and
/// llama2.c take the leftmost, so runs of one character ("Hmmm", "=====") can split differently (same text,
/// other ids). Everything else gives the same ids; <see cref="Llama2cTokenizer"/> matches SentencePiece exactly.</item>
/// <item>Decoding: SentencePiece drops the dummy-prefix space of the first token whether or not BOS precedes
/// it, where llama2.c drops it only after BOS.</item>
/// </list>
/// The library (2.0.1) also drops that space from the first piece after leading byte tokens ("🏽in" for the bytes of
/// 🏽 then "▁in"), where SentencePiece drops it only while no text has been written ("🏽 in", as Hugging Face's
/// decoder gives too): <see cref="Decode"/> corrects it.
/// </summary>
public sealed class SentencePieceModelTokenizer : ITokenizer
{
    private readonly SentencePieceTokenizer _model;

    /// <summary>Which ids are byte pieces (<c>&lt;0xNN&gt;</c>).</summary>
    private readonly bool[] _isByte;

    /// <summary>A piece beginning with the dummy prefix, which takes the library's drop of it (see <see cref="Decode"/>); -1 when the vocabulary has none.</summary>
    private readonly int _spacePiece;

    /// <summary>What <see cref="_spacePiece"/> decodes to as a text's first piece, taken off again after it.</summary>
    private readonly string _spacePieceText = "";

    private SentencePieceModelTokenizer(string source, SentencePieceTokenizer model)
    {
        Source = source;
        _model = model;
        _isByte = new bool[model.Vocabulary.Count];
        foreach (var (piece, id) in model.Vocabulary)
            if ((uint)id < (uint)_isByte.Length) _isByte[id] = piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>';
        _spacePiece = model.Vocabulary.TryGetValue("\u2581", out int space) ? space
            : model.Vocabulary.Where(p => p.Key.StartsWith('\u2581')).Select(p => p.Value).DefaultIfEmpty(-1).Min();
        if (_spacePiece >= 0) _spacePieceText = model.Decode([_spacePiece], considerSpecialTokens: false);
    }

    public string Source { get; }
    public int VocabSize => _model.Vocabulary.Count;
    public int BosId => _model.BeginningOfSentenceId;
    public int EosId => _model.EndOfSentenceId;

    public static SentencePieceModelTokenizer Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "tokenizer file not found");
        return FromModelProto(path, InputFileLimits.ReadAllBytes(path, InputFileLimits.TokenizerModelBytes, "tokenizer.model"));
    }

    /// <summary>A tokenizer from a serialized SentencePiece ModelProto; <paramref name="source"/> names where it came from, for messages.</summary>
    internal static SentencePieceModelTokenizer FromModelProto(string source, byte[] modelProto)
    {
        using var stream = new MemoryStream(modelProto, writable: false);
        try
        {
            // BOS is added per call instead, as ITokenizer.Encode asks; SentencePiece never appends EOS for prompts.
            return new SentencePieceModelTokenizer(source, SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e)
        {
            // The library reports a bad protobuf (an IOException subtype) or an unsupported model kind with assorted types.
            throw new ModelFormatException(source, null, $"not a usable SentencePiece model: {e.Message}", e);
        }
    }

    public int[] Encode(string text, bool addBos = true)
    {
        bool withBos = addBos && BosId >= 0;
        // The library returns nothing at all for empty text, even when asked for BOS.
        if (text.Length == 0)
            return withBos ? [BosId] : [];
        return [.. _model.EncodeToIds(text, addBeginningOfSentence: withBos, addEndOfSentence: false)];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {VocabSize} ({Source})");
        }
        // After leading byte pieces the library drops the dummy prefix of the next piece, which SentencePiece keeps, as
        // text has begun: a piece ahead takes the drop, and its own text is taken off again.
        int first = 0;
        while (first < ids.Length && (ids[first] == BosId || ids[first] == EosId)) first++;
        if (first == ids.Length || !_isByte[ids[first]] || _spacePiece < 0)
            return _model.Decode(ids.ToArray(), considerSpecialTokens: false);
        return _model.Decode([_spacePiece, .. ids], considerSpecialTokens: false)[_spacePieceText.Length..];
    }
}
