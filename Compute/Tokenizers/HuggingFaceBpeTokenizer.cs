using System.Text;
using FtpCluster.Compute.Models;
using Microsoft.ML.Tokenizers;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// A token of tokenizer.json's added_tokens, matched in the text before anything else is done to it.
/// Special ones (BOS, EOS, chat markers) produce no text when decoded; the others produce their content.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>
/// A Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3, Qwen2, SmolLM2 style).
/// Encoding runs as in Hugging Face tokenizers: added tokens are cut out of the text first, the rest is
/// normalized and pre-tokenized (regex splits, then ByteLevel), and each pre-token is merged by rank by
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> in byte-level mode. The library has no tokenizer.json
/// loader and its pre-tokenizers cannot express ByteLevel's prefix space or a chain of splits, so the
/// splitting happens here and the library sees one pre-token at a time. Decoding maps tokens back to bytes
/// through the byte-level alphabet and decodes all bytes as UTF-8 at once.
/// </summary>
/// <remarks>
/// Added tokens are matched literally, longest first; their lstrip, rstrip, single_word and normalized
/// options are not applied. Regexes run in .NET, where \p{L} and \p{N} do not match characters outside the
/// Basic Multilingual Plane (they are surrogate pairs there), so such letters split as symbols would.
/// A Unicode normalizer (Qwen2's NFC) only takes effect where .NET has normalization data: under
/// InvariantGlobalization, as this repository builds, string.Normalize returns non-ASCII text unchanged,
/// so text that is not already in that form can tokenize differently from Hugging Face.
/// </remarks>
public sealed class HuggingFaceBpeTokenizer : ITokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokenOfId;
    private readonly Dictionary<int, AddedToken> _addedTokenOfId;
    private readonly Dictionary<string, AddedToken> _addedTokenOfContent;
    private readonly AddedTokenMatcher? _addedTokenMatcher;
    private readonly List<NormalizationForm> _normalizations;
    private readonly List<PreTokenizerStep> _preTokenizerSteps;
    private readonly bool _ignoreMerges;

    private HuggingFaceBpeTokenizer(string source, HuggingFaceTokenizerSpec spec)
    {
        Source = source;
        _vocab = spec.Vocab;
        _normalizations = spec.Normalizations;
        _preTokenizerSteps = spec.PreTokenizerSteps;
        _ignoreMerges = spec.IgnoreMerges;
        BosId = spec.BosId;
        EosId = spec.EosId;

        // An added token may also be in the vocabulary (GPT-2's <|endoftext|>); as in Hugging Face, the added
        // entry decides how it is matched and decoded.
        _addedTokenOfId = spec.AddedTokens.GroupBy(t => t.Id).ToDictionary(g => g.Key, g => g.Last());
        _addedTokenOfContent = spec.AddedTokens.GroupBy(t => t.Content, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
        // Ids size the id-to-token table, so one crafted id could ask for gigabytes.
        foreach (int id in _vocab.Values.Concat(_addedTokenOfId.Keys))
        {
            if (id < 0 || id >= ModelConfig.MaxVocabSize)
                throw new ModelFormatException(source, null,
                    $"token id {id} ('{_vocab.FirstOrDefault(v => v.Value == id).Key ?? _addedTokenOfId.GetValueOrDefault(id)?.Content}') is outside [0, {ModelConfig.MaxVocabSize}), the ids a vocabulary may use");
        }
        VocabSize = Math.Max(_vocab.Values.Max(), _addedTokenOfId.Count == 0 ? -1 : _addedTokenOfId.Keys.Max()) + 1;
        _tokenOfId = new string?[VocabSize];
        foreach (var (token, id) in _vocab)
            _tokenOfId[id] = token;
        foreach (var (id, token) in _addedTokenOfId)
            _tokenOfId[id] = token.Content;
        if (_addedTokenOfContent.Count > 0)
            _addedTokenMatcher = new AddedTokenMatcher(_addedTokenOfContent);
        foreach (int id in new[] { BosId, EosId })
        {
            if (id >= VocabSize || (id >= 0 && _tokenOfId[id] is null))
                throw new ModelFormatException(source, null, $"BOS/EOS id {id} names no token");
        }

        // Pre-tokenization and added tokens are handled above the library, which only merges; BOS too, since
        // ITokenizer.Encode adds it per call.
        _bpe = BpeTokenizer.Create(new BpeOptions(_vocab) { Merges = spec.Merges, ByteLevel = true });
    }

    public string Source { get; }
    public int VocabSize { get; }
    public int BosId { get; }
    public int EosId { get; }

    /// <summary>The added tokens by content: chat markers and other tokens an engine may stop on or insert.</summary>
    public IReadOnlyDictionary<string, AddedToken> AddedTokens => _addedTokenOfContent;

    public static HuggingFaceBpeTokenizer Load(string path) => new(path, HuggingFaceTokenizerJson.Read(path));

    /// <summary>A tokenizer from a spec read elsewhere (GGUF metadata) and checked as <see cref="HuggingFaceTokenizerJson"/> checks one.</summary>
    internal static HuggingFaceBpeTokenizer FromSpec(string source, HuggingFaceTokenizerSpec spec) => new(source, spec);

    public int[] Encode(string text, bool addBos = true)
    {
        var ids = new List<int>();
        if (addBos && BosId >= 0)
            ids.Add(BosId);
        int start = 0;
        while (_addedTokenMatcher?.FindFirst(text.AsSpan(start)) is { } match)
        {
            EncodeOrdinaryText(text.Substring(start, match.Index), ids);
            ids.Add(match.Token.Id);
            start += match.Index + match.Token.Content.Length;
        }
        EncodeOrdinaryText(text[start..], ids);
        return ids.ToArray();
    }

    private void EncodeOrdinaryText(string text, List<int> ids)
    {
        if (text.Length == 0)
            return;
        foreach (NormalizationForm form in _normalizations)
            text = text.Normalize(form);
        IEnumerable<string> pieces = [text];
        foreach (PreTokenizerStep step in _preTokenizerSteps)
            pieces = pieces.SelectMany(step.Apply);
        foreach (string piece in pieces)
        {
            if (_ignoreMerges && _vocab.TryGetValue(ByteLevelAlphabet.Spell(piece), out int wholeId))
                ids.Add(wholeId);
            else
                ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
        }
    }

    /// <summary>Special added tokens produce no text; other added tokens produce their content.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length * 4);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize || _tokenOfId[id] is not { } token)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id names no token of {Source}");
            if (_addedTokenOfId.TryGetValue(id, out AddedToken? added))
            {
                if (!added.Special)
                    bytes.AddRange(Encoding.UTF8.GetBytes(added.Content));
                continue;
            }
            ByteLevelAlphabet.AppendBytes(token, bytes);
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }
}
