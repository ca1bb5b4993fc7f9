namespace FtpCluster.Grains.Files;

/// <summary>How much of a file its writer has put into pieces: where a writer that goes on after it starts.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.FilePieces")]
public sealed record FilePieces(
    [property: Id(0)] int Chunks,
    [property: Id(1)] long Bytes,
    [property: Id(2)] int Lines)
{
    public static readonly FilePieces None = new(0, 0, 0);
}

/// <summary>
/// Writes a file's content into its <see cref="IFileChunkGrain"/>s, each piece filled to
/// <see cref="FileLimits.ChunkBytes"/> before the next (a line may span two pieces), and commits it as an
/// <see cref="IFileGrain"/>. Holds one piece at most. Lines are counted as written: a last line without a newline
/// counts too.
/// </summary>
public sealed class StoredFileWriter
{
    private readonly IGrainFactory _grains;
    private byte[] _piece = [];
    private int _buffered;
    private byte _lastByte = (byte)'\n';

    /// <param name="after">Pieces of the file already written, ending at the end of a line: writing goes on in a new piece after them.</param>
    public StoredFileWriter(IGrainFactory grains, string fileId, FilePieces? after = null)
    {
        _grains = grains;
        FileId = fileId;
        Written = after ?? FilePieces.None;
    }

    public string FileId { get; }

    /// <summary>The pieces written so far (not counting bytes waiting to fill the current one).</summary>
    public FilePieces Written { get; private set; }

    /// <summary>Bytes written, those waiting in the current piece included.</summary>
    public long Bytes => Written.Bytes + _buffered;

    public async Task Write(ReadOnlyMemory<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        _lastByte = bytes.Span[^1];
        Written = Written with { Lines = Written.Lines + bytes.Span.Count((byte)'\n') };
        while (!bytes.IsEmpty)
        {
            if (_piece.Length == 0) _piece = new byte[FileLimits.ChunkBytes];
            int count = Math.Min(bytes.Length, _piece.Length - _buffered);
            bytes[..count].CopyTo(_piece.AsMemory(_buffered));
            (_buffered, bytes) = (_buffered + count, bytes[count..]);
            if (_buffered == _piece.Length) await Flush();
        }
    }

    public async Task WriteLine(ReadOnlyMemory<byte> line)
    {
        await Write(line);
        await Write("\n"u8.ToArray());
    }

    /// <summary>Writes the bytes waiting as a piece of their own (a later write starts a new piece); returns where the file stands.</summary>
    public async Task<FilePieces> Flush()
    {
        if (_buffered > 0)
        {
            await _grains.GetGrain<IFileChunkGrain>($"{FileId}/{Written.Chunks}").Write(_piece[.._buffered]);
            Written = Written with { Chunks = Written.Chunks + 1, Bytes = Written.Bytes + _buffered };
            _buffered = 0;
        }
        return Written;
    }

    /// <summary>Writes what waits and makes the file of it.</summary>
    public async Task<StoredFile> Commit(string filename, string purpose)
    {
        var written = await Flush();
        int lines = written.Lines + (written.Bytes > 0 && _lastByte != (byte)'\n' ? 1 : 0);
        return await _grains.GetGrain<IFileGrain>(FileId).Commit(filename, purpose, written.Bytes, written.Chunks, lines);
    }

    /// <summary>Clears the pieces written and forgets what waits: for a file that will not be committed.</summary>
    public async Task Discard()
    {
        await Task.WhenAll(Enumerable.Range(0, Written.Chunks).Select(n => _grains.GetGrain<IFileChunkGrain>($"{FileId}/{n}").Clear()));
        (Written, _buffered, _lastByte) = (FilePieces.None, 0, (byte)'\n');
    }
}
