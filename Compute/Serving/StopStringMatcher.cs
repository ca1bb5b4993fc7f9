namespace FtpCluster.Compute.Serving;

/// <summary>
/// Finds a request's stop strings in generated text. The generation loop calls <see cref="TryFind"/> after each
/// new token with all the text so far; it searches only what is new since the last call (and, before that, one
/// less than the longest stop string's length, so a stop string that straddles tokens is found), so a long answer
/// costs no more per token than a short one. Text ending in U+FFFD (a character whose bytes have not all been
/// generated yet) is searched again from there next time, since a later decode replaces it.
/// </summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly int _longest;
    private int _settled;

    public StopStringMatcher(IReadOnlyList<string> stops)
    {
        for (int i = 0; i < stops.Count; i++)
            if (string.IsNullOrEmpty(stops[i])) throw new ArgumentException($"stop string {i} is empty: an empty stop string would stop before the first token", nameof(stops));
        _stops = [.. stops];
        _longest = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    public IReadOnlyList<string> Stops => _stops;

    /// <summary>Whether a stop string occurs in <paramref name="textSoFar"/>, which extends the text of the previous
    /// call; <paramref name="index"/> is where the earliest one begins (the answer is cut there), -1 when none does.</summary>
    public bool TryFind(string textSoFar, out int index)
    {
        int from = Math.Max(0, Math.Min(_settled, textSoFar.Length) - (_longest - 1));
        index = FindFirst(textSoFar, from);
        int settled = textSoFar.Length;
        while (settled > 0 && textSoFar[settled - 1] == '\uFFFD') settled--;
        _settled = settled;
        return index >= 0;
    }

    /// <summary>Where the earliest stop string begins in the whole of <paramref name="text"/>, -1 when none occurs;
    /// no state is kept.</summary>
    public int FindFirst(string text) => FindFirst(text, 0);

    /// <summary>Where the earliest stop string beginning at or after <paramref name="from"/> begins, -1 when none
    /// does; no state is kept.</summary>
    public int FindFirst(string text, int from)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(from, text.Length);
        int first = -1;
        foreach (string stop in _stops)
        {
            int at = text.IndexOf(stop, from, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        return first;
    }
}
