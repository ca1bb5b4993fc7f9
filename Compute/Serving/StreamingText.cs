namespace FtpCluster.Compute.Serving;

/// <summary>
/// Which part of a growing answer a streamed response may send now. After each generated token the caller passes
/// the text of all tokens so far, decoded together; what comes back is the text not sent before that can no longer
/// change. Held back are a trailing U+FFFD (a character whose bytes have not all been generated) and a trailing piece
/// that is the start of a stop string (a later token may complete it, and the answer is cut where a stop string
/// begins). Nothing from the first stop string on is ever sent. The pieces sent, joined with what
/// <see cref="Finish"/> returns, are exactly the answer's final text.
/// </summary>
public sealed class StreamingText
{
    private readonly StopStringMatcher _stops;
    private readonly int _longestStop;

    /// <summary>The text the sent characters were taken from; its first <see cref="SentLength"/> characters are what was sent.</summary>
    private string _source = "";

    /// <summary>Where the earliest stop string seen begins; nothing at or after it is sent.</summary>
    private int _stopAt = int.MaxValue;

    private bool _finished;

    /// <param name="stops">The request's stop strings (none empty).</param>
    public StreamingText(IReadOnlyList<string> stops)
    {
        _stops = new StopStringMatcher(stops);
        _longestStop = _stops.Stops.Count == 0 ? 0 : _stops.Stops.Max(s => s.Length);
    }

    /// <summary>How many characters (UTF-16 code units) of the answer have been sent.</summary>
    public int SentLength { get; private set; }

    /// <summary>The text to send now, possibly empty.</summary>
    /// <param name="decodedSoFar">All the tokens generated so far, decoded together.</param>
    /// <exception cref="InvalidOperationException"><see cref="Finish"/> was called already.</exception>
    public string Next(string decodedSoFar)
    {
        ArgumentNullException.ThrowIfNull(decodedSoFar);
        if (_finished) throw new InvalidOperationException("the streamed answer is finished: Next was called after Finish");
        // A tokenizer whose decode of a prefix differs from the start of the longer decode may take back what was
        // sent; nothing more goes out until the text agrees with it again.
        if (!decodedSoFar.AsSpan().StartsWith(_source.AsSpan(0, SentLength), StringComparison.Ordinal)) return "";

        // What was sent holds no whole stop string, so one can only begin in its last (longest stop - 1) characters.
        if (_longestStop > 0)
        {
            int stop = _stops.FindFirst(decodedSoFar, Math.Max(0, SentLength - (_longestStop - 1)));
            if (stop >= 0) _stopAt = Math.Min(_stopAt, stop);
        }

        int end = Math.Min(decodedSoFar.Length, _stopAt);
        while (end > SentLength && decodedSoFar[end - 1] == '\uFFFD') end--;
        end = StartOfPossibleStop(decodedSoFar, end);
        // A stop string beginning with a low surrogate would otherwise split a pair.
        if (end > SentLength && char.IsHighSurrogate(decodedSoFar[end - 1])) end--;
        if (end <= SentLength) return "";

        string piece = decodedSoFar[SentLength..end];
        _source = decodedSoFar;
        SentLength = end;
        return piece;
    }

    /// <summary>The rest of the answer not sent yet; after this nothing more is sent.</summary>
    /// <param name="finalText">The answer's final text, as the response has it (already cut at the stop string).</param>
    /// <exception cref="InvalidOperationException">What was sent is not the start of <paramref name="finalText"/>,
    /// or the answer was finished already.</exception>
    public string Finish(string finalText)
    {
        ArgumentNullException.ThrowIfNull(finalText);
        if (_finished) throw new InvalidOperationException("the streamed answer is finished already: Finish was called twice");
        var sent = _source.AsSpan(0, SentLength);
        if (!finalText.AsSpan().StartsWith(sent, StringComparison.Ordinal))
        {
            int differsAt = sent.CommonPrefixLength(finalText);
            throw new InvalidOperationException(
                $"the final text does not begin with what was streamed: they differ at character {differsAt}, where the " +
                $"{SentLength} characters sent read \"{Excerpt(sent, differsAt)}\" and the final text ({finalText.Length} " +
                $"characters) reads \"{Excerpt(finalText, differsAt)}\"");
        }
        _finished = true;
        string rest = finalText[SentLength..];
        _source = finalText;
        SentLength = finalText.Length;
        return rest;
    }

    /// <summary>Where the longest piece of <paramref name="text"/> ending at <paramref name="end"/> that is the start
    /// of a stop string begins (not before what was sent); <paramref name="end"/> when no such piece does.</summary>
    private int StartOfPossibleStop(string text, int end)
    {
        // A piece as long as a stop string would be that stop string, found already; only shorter ones can grow into one.
        for (int start = Math.Max(SentLength, end - (_longestStop - 1)); start < end; start++)
        {
            var piece = text.AsSpan(start, end - start);
            foreach (string stop in _stops.Stops)
                if (stop.AsSpan().StartsWith(piece, StringComparison.Ordinal)) return start;
        }
        return end;
    }

    /// <summary>Up to 20 characters either side of <paramref name="at"/>, marking what was left out.</summary>
    private static string Excerpt(ReadOnlySpan<char> text, int at)
    {
        const int Reach = 20;
        int from = Math.Max(0, at - Reach);
        int to = Math.Min(text.Length, at + Reach);
        return (from > 0 ? "…" : "") + text[from..to].ToString() + (to < text.Length ? "…" : "");
    }
}
