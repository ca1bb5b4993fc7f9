using System.Buffers;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// Finds added tokens in a text, leftmost first and, at one position, longest first, as Hugging Face's
/// added vocabulary does. The cost stays linear in the tokens' total length: a regex alternation of the
/// contents costs time and memory quadratic in the longest one when it is built (a 38 000-character token
/// made .NET's Regex allocate 580 MB), and a tokenizer file's added tokens are untrusted input.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly SearchValues<string> _anyToken;
    private readonly Dictionary<string, AddedToken>.AlternateLookup<ReadOnlySpan<char>> _tokenOfContent;
    // Longest first, so that a token that is a prefix of another does not win at the same position.
    private readonly int[] _lengths;

    public AddedTokenMatcher(Dictionary<string, AddedToken> tokenOfContent)
    {
        // An empty token would match everywhere and consume nothing; a GGUF vocabulary may hold one as a control token.
        string[] contents = [.. tokenOfContent.Keys.Where(c => c.Length > 0)];
        _anyToken = SearchValues.Create(contents, StringComparison.Ordinal);
        _tokenOfContent = tokenOfContent.GetAlternateLookup<ReadOnlySpan<char>>();
        _lengths = [.. contents.Select(c => c.Length).Distinct().OrderDescending()];
    }

    /// <summary>The first added token in <paramref name="text"/>, with where it starts; null when there is none.</summary>
    public (int Index, AddedToken Token)? FindFirst(ReadOnlySpan<char> text)
    {
        int index = text.IndexOfAny(_anyToken);
        if (index < 0)
            return null;
        ReadOnlySpan<char> rest = text[index..];
        foreach (int length in _lengths)
        {
            if (length <= rest.Length && _tokenOfContent.TryGetValue(rest[..length], out AddedToken? token))
                return (index, token);
        }
        throw new InvalidOperationException("SearchValues found an added token that no length of it names");
    }
}
