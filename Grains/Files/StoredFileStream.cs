namespace FtpCluster.Grains.Files;

/// <summary>
/// A stored file's content, read once from start to end: piece N+1 is fetched from its
/// <see cref="IFileChunkGrain"/> while piece N is being read, so at most two pieces are held. A file whose pieces do
/// not add up to its size (deleted while it was read) ends in a <see cref="StoredFileChangedException"/>.
/// </summary>
/// <remarks>
/// <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> is the way to read it. The synchronous
/// <see cref="Read(byte[], int, int)"/> waits on grain calls, so it is for a thread of its own only: a grain that
/// waits on a grain call on its own thread deadlocks.
/// </remarks>
public sealed class StoredFileStream : Stream
{
    private readonly IGrainFactory _grains;
    private readonly StoredFile _file;
    private byte[] _piece = [];
    private int _pieceOffset;
    private int _nextPiece;
    private Task<byte[]>? _ahead;
    private long _read;

    public StoredFileStream(IGrainFactory grains, StoredFile file)
    {
        _grains = grains;
        _file = file;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException("a stored file's stream is read from start to end; its size is StoredFile.Bytes");
    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException("a stored file's stream is read from start to end");
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        await Fill(cancellationToken) ? Take(buffer.Span) : 0;

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer) => Fill(CancellationToken.None).AsTask().GetAwaiter().GetResult() ? Take(buffer) : 0;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a stored file's stream is read from start to end");
    public override void SetLength(long value) => throw new NotSupportedException("a stored file's stream is read-only");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("a stored file's stream is read-only");

    /// <summary>Fetches pieces until one has bytes not yet read; false at the end of the file.</summary>
    private async ValueTask<bool> Fill(CancellationToken cancellationToken)
    {
        while (_pieceOffset == _piece.Length)
        {
            if (_nextPiece == _file.Chunks) return _read == _file.Bytes ? false : throw Truncated();
            _piece = await (_ahead ?? Piece(_nextPiece)).WaitAsync(cancellationToken);
            _pieceOffset = 0;
            _nextPiece++;
            _ahead = _nextPiece < _file.Chunks ? Piece(_nextPiece) : null;
        }
        return true;
    }

    private int Take(Span<byte> buffer)
    {
        int count = Math.Min(buffer.Length, _piece.Length - _pieceOffset);
        _piece.AsSpan(_pieceOffset, count).CopyTo(buffer);
        _pieceOffset += count;
        _read += count;
        return _read <= _file.Bytes ? count : throw Truncated();
    }

    private Task<byte[]> Piece(int n) => _grains.GetGrain<IFileChunkGrain>($"{_file.Id}/{n}").Read();

    private StoredFileChangedException Truncated() =>
        new($"file {_file.Id} ({_file.Filename}) has {_file.Bytes} bytes in {_file.Chunks} pieces, but its pieces hold " +
            $"{(_read > _file.Bytes ? "more" : $"only {_read}")}: it was deleted or changed while it was read");
}

/// <summary>
/// A stored file whose pieces do not add up to its size: it was deleted or changed while it was read. Its own type,
/// because a grain call that fails on a lost connection is an <see cref="IOException"/> too (ConnectionResetException),
/// and only this one says the file is gone.
/// </summary>
public sealed class StoredFileChangedException(string message) : IOException(message);
