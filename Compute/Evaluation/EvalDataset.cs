using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Evaluation;

/// <summary>One sequence of token ids to evaluate, and where in the data it came from (file:line).</summary>
public sealed record EvalSequence(int[] Ids, string Origin);

/// <summary>A line of the data that could not be used, and why; the rest of the file still is.</summary>
public sealed record DataProblem(string File, int Line, string Message)
{
    public override string ToString() => $"{File}:{Line}: {Message}";
}

public sealed record EvalDataOptions
{
    /// <summary>Longer sequences are cut into consecutive pieces of at most this many tokens. Null: the model's context.</summary>
    public int? MaxLength { get; init; }

    /// <summary>Stop after this many sequences (pieces of a cut sequence count one each). Null: all.</summary>
    public int? MaxSequences { get; init; }

    /// <summary>Shorter sequences (and the short tail left by a cut) are skipped and counted.</summary>
    public int MinLength { get; init; } = Continuation.MinSequenceLength;
}

/// <summary>
/// Evaluation (or calibration) data as token id sequences, from either of two formats:
/// <list type="bullet">
/// <item>JSON lines, one object per line with <c>"ids"</c> (token ids) or <c>"text"</c> (encoded with BOS
/// first, as <c>generate</c> encodes a prompt) — what <c>ftpcluster generate --samples</c> writes; when a
/// line has both, the ids are used as they are exact. A file is JSON lines when its name ends in .jsonl
/// or its first non-blank line starts with '{'.</item>
/// <item>Plain text, cut into documents at blank lines, each encoded with BOS first.</item>
/// </list>
/// A line that cannot be used is reported as a <see cref="DataProblem"/> and skipped, never ending the load.
/// </summary>
public sealed class EvalDataset
{
    private readonly List<EvalSequence> _sequences = [];
    private readonly List<DataProblem> _problems = [];
    private readonly string _path;
    private readonly int _maxLength;
    private readonly EvalDataOptions _options;

    private EvalDataset(string path, int maxLength, EvalDataOptions options)
    {
        _path = path;
        _maxLength = maxLength;
        _options = options;
    }

    public string Path => _path;
    public IReadOnlyList<EvalSequence> Sequences => _sequences;
    public IReadOnlyList<DataProblem> Problems => _problems;

    /// <summary>Sequences (or tails of cut ones) skipped for being shorter than the minimum length.</summary>
    public int TooShort { get; private set; }

    /// <summary>Sequences longer than the maximum length, each cut into pieces.</summary>
    public int Cut { get; private set; }

    /// <summary>True when reading stopped at the maximum number of sequences before the end of the file.</summary>
    public bool StoppedEarly { get; private set; }

    public int Tokens => _sequences.Sum(s => s.Ids.Length);

    /// <summary>The tokens of every sequence's continuation: how many predictions the headline figures rest on.</summary>
    public int ContinuationTokens => _sequences.Sum(s => s.Ids.Length - Continuation.Start(s.Ids.Length));

    /// <param name="tokenizer">Encodes text; may be null for JSON lines that carry ids.</param>
    /// <param name="vocabSize">Ids must lie in [0, vocabSize).</param>
    /// <param name="contextLength">The model's context: the maximum length is capped at it.</param>
    public static EvalDataset Load(string path, ITokenizer? tokenizer, int vocabSize, int contextLength, EvalDataOptions? options = null)
    {
        options ??= new EvalDataOptions();
        if (options.MinLength < Continuation.MinSequenceLength)
            throw new ArgumentException($"the minimum length must be at least {Continuation.MinSequenceLength} (a context and a continuation of {Continuation.MinTokens} tokens), got {options.MinLength}");
        int maxLength = Math.Min(options.MaxLength ?? contextLength, contextLength);
        if (maxLength < options.MinLength)
            throw new ArgumentException($"the maximum length {maxLength} is below the minimum length {options.MinLength}");
        if (options.MaxSequences is <= 0)
            throw new ArgumentException($"the maximum number of sequences must be positive, got {options.MaxSequences}");

        var data = new EvalDataset(path, maxLength, options);
        if (IsJsonLines(path)) data.ReadJsonLines(tokenizer, vocabSize);
        else data.ReadPlainText(tokenizer);
        return data;
    }

    /// <summary>How many of these sequences also occur, token for token, in <paramref name="other"/>.</summary>
    public int CountShared(IEnumerable<EvalSequence> other)
    {
        var theirs = other.Select(s => Key(s.Ids)).ToHashSet(StringComparer.Ordinal);
        return _sequences.Count(s => theirs.Contains(Key(s.Ids)));
        static string Key(int[] ids) => string.Join(',', ids);
    }

    private static bool IsJsonLines(string path)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return true;
        var firstLine = File.ReadLines(path).FirstOrDefault(l => !string.IsNullOrWhiteSpace(l));
        return firstLine is not null && firstLine.TrimStart().StartsWith('{');
    }

    private void ReadJsonLines(ITokenizer? tokenizer, int vocabSize)
    {
        int lineNumber = 0;
        foreach (var line in File.ReadLines(_path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (Parse(line, tokenizer, vocabSize, out string? problem) is { } ids)
            {
                if (!Add(ids, $"{_path}:{lineNumber}")) return;
            }
            else
            {
                _problems.Add(new DataProblem(_path, lineNumber, problem!));
            }
        }
    }

    /// <summary>The ids of one JSON line, or null with the reason it cannot be used.</summary>
    private static int[]? Parse(string line, ITokenizer? tokenizer, int vocabSize, out string? problem)
    {
        problem = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            problem = $"not valid JSON: {e.Message}";
            return null;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problem = $"expected a JSON object with \"ids\" (an array of token ids) or \"text\" (a string), got {Describe(root.ValueKind)}";
                return null;
            }
            if (root.TryGetProperty("ids", out var idsElement)) return ParseIds(idsElement, vocabSize, out problem);
            if (root.TryGetProperty("text", out var textElement))
            {
                if (textElement.ValueKind != JsonValueKind.String)
                    problem = $"\"text\" must be a string, got {Describe(textElement.ValueKind)}";
                else if (tokenizer is null)
                    problem = "\"text\" needs a tokenizer to become token ids, and none was given";
                else
                    return tokenizer.Encode(textElement.GetString()!, addBos: true);
                return null;
            }
            problem = "expected \"ids\" (an array of token ids) or \"text\" (a string), found neither";
            return null;
        }
    }

    private static int[]? ParseIds(JsonElement element, int vocabSize, out string? problem)
    {
        problem = null;
        if (element.ValueKind != JsonValueKind.Array)
        {
            problem = $"\"ids\" must be an array of token ids, got {Describe(element.ValueKind)}";
            return null;
        }
        var ids = new int[element.GetArrayLength()];
        int i = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
            {
                problem = $"ids[{i}] is not an integer: {item.GetRawText()}";
                return null;
            }
            if (id < 0 || id >= vocabSize)
            {
                problem = $"ids[{i}] = {id} is outside the vocabulary [0, {vocabSize})";
                return null;
            }
            ids[i++] = id;
        }
        if (ids.Length == 0) problem = "\"ids\" is empty";
        return ids.Length == 0 ? null : ids;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private void ReadPlainText(ITokenizer? tokenizer)
    {
        if (tokenizer is null)
            throw new InvalidDataException($"{_path}: plain text needs a tokenizer to become token ids, and none was given");
        var document = new StringBuilder();
        int firstLine = 0, lineNumber = 0;
        foreach (var line in File.ReadLines(_path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                if (document.Length > 0 && !Add(tokenizer.Encode(document.ToString(), addBos: true), $"{_path}:{firstLine}")) return;
                document.Clear();
                continue;
            }
            if (document.Length == 0) firstLine = lineNumber;
            else document.Append('\n');
            document.Append(line.TrimEnd());
        }
        if (document.Length > 0) Add(tokenizer.Encode(document.ToString(), addBos: true), $"{_path}:{firstLine}");
    }

    /// <summary>Adds a sequence, cut into pieces of the maximum length; false once the maximum count is reached.</summary>
    private bool Add(int[] ids, string origin)
    {
        if (ids.Length > _maxLength) Cut++;
        for (int start = 0; start < ids.Length; start += _maxLength)
        {
            if (_sequences.Count == _options.MaxSequences)
            {
                StoppedEarly = true;
                return false;
            }
            int length = Math.Min(_maxLength, ids.Length - start);
            if (length < _options.MinLength)
            {
                TooShort++;
                continue;
            }
            string piece = ids.Length > _maxLength ? $" (tokens {start}..{start + length})" : "";
            _sequences.Add(new EvalSequence(ids[start..(start + length)], origin + piece));
        }
        return true;
    }
}
