using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>A torn last line cut off an output file when it was opened: the end of a run killed mid-write.</summary>
public sealed record TornLineRepair(string Path, long BytesCut)
{
    public override string ToString() => $"{Path}: repaired a torn last line ({BytesCut} bytes)";
}

/// <summary>
/// The output file of a batch run, and its errors file when there is one (without one, failures go into the output
/// file, as vLLM writes them), opened for appending so that a run killed part way can be run again and go on.
/// Opening reads what the files hold: every line's <c>custom_id</c> is done, and so is the input line of a failure
/// without one. A last line without its newline, or that is not JSON, is the torn end of a killed run: it is cut off
/// (the file truncated to the end of the line before) and reported in <see cref="Repairs"/>. Any other line that is
/// not an output line (not JSON, or JSON without a <c>custom_id</c> or <c>error.line</c>) means the file is not one a run
/// wrote or is corrupt, and opening refuses (an <see cref="InvalidDataException"/> naming the file and line) rather
/// than append to it. Two runs on the same files at once are not refused (on Unix, .NET's advisory locks would
/// also keep a .NET reader from watching the file): do not start them.
/// </summary>
public sealed class BatchOutputFiles : IDisposable
{
    /// <summary>The longest line a scan accepts; an output line is a request's answer, far shorter.</summary>
    private const int MaxOutputLineBytes = 256 << 20;

    private readonly Lock _gate = new();
    private readonly FileStream _output;
    private readonly FileStream? _errors;
    private readonly HashSet<string> _doneIds = new(StringComparer.Ordinal);
    private readonly HashSet<int> _doneLines = [];
    private readonly List<TornLineRepair> _repairs = [];

    private BatchOutputFiles(string outputPath, string? errorsPath)
    {
        try
        {
            _output = OpenAndScan(outputPath);
            if (errorsPath is not null) _errors = OpenAndScan(errorsPath);
        }
        catch
        {
            _output?.Dispose();
            throw;
        }
    }

    /// <summary>Opens (creating when absent) the output file and the optional errors file for appending.</summary>
    /// <exception cref="InvalidDataException">A line before the last is not a batch output line.</exception>
    public static BatchOutputFiles Open(string outputPath, string? errorsPath = null)
    {
        if (errorsPath is not null && Path.GetFullPath(errorsPath) == Path.GetFullPath(outputPath))
            throw new ArgumentException($"the errors file {errorsPath} is the output file: leave it out to write errors into the output", nameof(errorsPath));
        return new BatchOutputFiles(outputPath, errorsPath);
    }

    /// <summary>The torn last lines cut off on opening, at most one a file.</summary>
    public IReadOnlyList<TornLineRepair> Repairs => _repairs;

    /// <summary>How many lines the files hold, found on opening or appended since.</summary>
    public int DoneCount
    {
        get { lock (_gate) return _doneIds.Count + _doneLines.Count; }
    }

    /// <summary>Whether a line with this <c>custom_id</c> has been written.</summary>
    public bool IsDone(string customId)
    {
        lock (_gate) return _doneIds.Contains(customId);
    }

    /// <summary>Whether a failure without a <c>custom_id</c> has been written for this input line.</summary>
    public bool IsDone(int inputLine)
    {
        lock (_gate) return _doneLines.Contains(inputLine);
    }

    /// <summary>Writes the line and its newline in one write and hands it to the operating system before returning,
    /// so a killed process loses no line this returned for. Safe to call from several threads.</summary>
    public void Append(BatchOutputLine line)
    {
        var json = line.Json.Span;
        var bytes = new byte[json.Length + 1];
        json.CopyTo(bytes);
        bytes[^1] = (byte)'\n';
        var file = line.IsError && _errors is not null ? _errors : _output;
        lock (_gate)
        {
            file.Write(bytes);
            file.Flush();
            MarkDone(line.CustomId, line.InputLine);
        }
    }

    public void Dispose()
    {
        _output.Dispose();
        _errors?.Dispose();
    }

    private FileStream OpenAndScan(string path)
    {
        // No buffering: each Append is one write call, so a line is never half in a buffer and half in the file.
        // Shared for reading, so a run's progress can be watched (also by .NET readers, which Unix's advisory locks stop).
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        try
        {
            long end = Scan(file, path);
            if (end < file.Length)
            {
                _repairs.Add(new TornLineRepair(path, file.Length - end));
                file.SetLength(end);
            }
            file.Seek(end, SeekOrigin.Begin);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Marks every complete line done; returns where the complete lines end.</summary>
    private long Scan(FileStream file, string path)
    {
        long length = file.Length;
        var lines = new ByteLineReader(file, MaxOutputLineBytes);
        while (lines.ReadLine())
        {
            if (!lines.Terminated) return lines.Start;
            if (!lines.TooLong && lines.Content.Span.IndexOfAnyExcept(" \t\r"u8) < 0) continue;
            var (problem, isJson) = lines.TooLong ? ($"a line of {lines.Length} bytes", false) : ReadDone(lines.Content);
            if (problem is null) continue;
            // A kill mid-write leaves part of a line: only the last line can be that, and it is never whole JSON.
            if (lines.End == length && !isJson) return lines.Start;
            throw new InvalidDataException(
                $"{path} line {lines.Number}: not a batch output line ({problem}); the file is not one a batch run wrote, or it is corrupt, so nothing is appended to it");
        }
        return length;
    }

    /// <summary>Marks the output line done; returns what is wrong with it (null when nothing is) and whether it is JSON.</summary>
    private (string? Problem, bool IsJson) ReadDone(ReadOnlyMemory<byte> content)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(content);
        }
        catch (JsonException e)
        {
            return ($"not JSON: {e.Message}", false);
        }
        using (document)
        {
            var line = document.RootElement;
            if (line.ValueKind != JsonValueKind.Object) return ($"a JSON {RequestJson.KindOf(line)}, not an object", true);
            if (line.TryGetProperty("custom_id", out var customId) && customId.ValueKind == JsonValueKind.String)
            {
                MarkDone(customId.GetString(), null);
                return (null, true);
            }
            if (line.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("line", out var inputLine) && inputLine.ValueKind == JsonValueKind.Number
                && inputLine.TryGetInt32(out int number) && number >= 1)
            {
                MarkDone(null, number);
                return (null, true);
            }
            return ("neither a string 'custom_id' nor an 'error.line'", true);
        }
    }

    private void MarkDone(string? customId, int? inputLine)
    {
        if (customId is not null) _doneIds.Add(customId);
        else if (inputLine is { } line) _doneLines.Add(line);
    }
}
