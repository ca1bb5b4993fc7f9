using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// The text of a growing answer, as decoding all its tokens together gives it, at a cost per new token that does not
/// grow with the answer (the streaming detokenizers of llama.cpp and vLLM work this way). The text is kept up to the
/// last settled point, where it ends in a whole character; each call decodes only the tokens past that point, behind a
/// short context, and takes as new text what they add to the context's own text. Until the first point settles, the
/// answer is decoded whole.
/// </summary>
/// <remarks>
/// The context is a plain-text anchor, which takes whatever a decoder does at the start of a text (a SentencePiece
/// dummy-prefix space dropped from the first piece), and the token before the settled point, for rules that look one
/// token back (Llama 2's space dropped after BOS). This is exact for a decoder that writes each token's bytes in order
/// under such rules; every tokenizer here is one (<c>IncrementalDecoderTests</c> checks each against decoding the
/// whole). A decoder found to be otherwise (a window that does not begin with its context's text) is decoded whole from
/// then on.
/// </remarks>
public sealed class IncrementalDecoder
{
    private readonly ITokenizer _tokenizer;
    private readonly int[] _anchor;

    /// <summary>The text of the tokens before <see cref="_settledAt"/>, which ends in a whole character.</summary>
    private string _settled = "";

    private int _settledAt;

    /// <summary>The context's own text: that of the anchor and the token before <see cref="_settledAt"/>.</summary>
    private string _contextText = "";

    private int _count;
    private bool _wholeOnly;

    public IncrementalDecoder(ITokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        _anchor = tokenizer.Encode("a", addBos: false);
        _wholeOnly = _anchor.Length == 0;
    }

    /// <summary>The text of <paramref name="tokensSoFar"/>, which extends the tokens of the previous call.</summary>
    /// <exception cref="ArgumentException">There are fewer tokens than at the previous call.</exception>
    public string Decode(IReadOnlyList<int> tokensSoFar)
    {
        if (tokensSoFar.Count < _count)
            throw new ArgumentException($"the answer had {_count} tokens and now has {tokensSoFar.Count}: an answer only grows", nameof(tokensSoFar));
        _count = tokensSoFar.Count;
        if (_wholeOnly || _settledAt == 0) return DecodeWhole(tokensSoFar);

        string window = _tokenizer.Decode(Context(tokensSoFar, _count - _settledAt));
        if (!window.StartsWith(_contextText, StringComparison.Ordinal))
        {
            _wholeOnly = true;
            return DecodeWhole(tokensSoFar);
        }
        string text = _settled + window[_contextText.Length..];
        if (window.Length > _contextText.Length) Settle(tokensSoFar, text);
        return text;
    }

    private string DecodeWhole(IReadOnlyList<int> tokens)
    {
        string text = _tokenizer.Decode([.. tokens]);
        if (!_wholeOnly && text.Length > 0) Settle(tokens, text);
        return text;
    }

    /// <summary>Makes the end of <paramref name="text"/> the settled point, unless it ends inside a character.</summary>
    private void Settle(IReadOnlyList<int> tokens, string text)
    {
        if (text[^1] == '\uFFFD') return;
        (_settled, _settledAt) = (text, tokens.Count);
        _contextText = _tokenizer.Decode(Context(tokens, 0));
    }

    /// <summary>The anchor, the token before the settled point, and then the <paramref name="past"/> tokens after it.</summary>
    private int[] Context(IReadOnlyList<int> tokens, int past)
    {
        var ids = new int[_anchor.Length + 1 + past];
        _anchor.CopyTo(ids, 0);
        for (int i = 0; i <= past; i++) ids[_anchor.Length + i] = tokens[_settledAt - 1 + i];
        return ids;
    }
}
