namespace FtpCluster.Compute.Serving;

/// <summary>
/// Splits a stream into lines of bytes while holding at most one line, and of that at most a cap: a longer line is
/// measured and skipped to its newline, never kept. A line ends at "\n" (a "\r" before it is dropped) or at the end
/// of the stream. After <see cref="ReadLine"/> returns true, the properties describe the line just read, and
/// <see cref="Content"/> stays valid until the next call.
/// </summary>
internal sealed class ByteLineReader(Stream stream, int maxLineBytes)
{
    private readonly byte[] _chunk = new byte[64 * 1024];
    private int _chunkStart;
    private int _chunkEnd;
    private byte[] _line = new byte[Math.Min(4096, maxLineBytes)];
    private int _lineLength;
    private long _offset;
    private bool _finished;

    /// <summary>The line's number, from 1.</summary>
    public int Number { get; private set; }

    /// <summary>Where the line starts in the stream, in bytes.</summary>
    public long Start { get; private set; }

    /// <summary>Where the next line starts: after this line's newline, or the end of the stream.</summary>
    public long End => _offset;

    /// <summary>Whether the line ended with a newline rather than at the end of the stream.</summary>
    public bool Terminated { get; private set; }

    /// <summary>The line's bytes before its newline, counting any over the cap.</summary>
    public long Length { get; private set; }

    /// <summary>Whether the line had more bytes than the cap; then <see cref="Content"/> is empty.</summary>
    public bool TooLong => Length > maxLineBytes;

    /// <summary>The line without its newline (and without a "\r" before it).</summary>
    public ReadOnlyMemory<byte> Content => TooLong ? ReadOnlyMemory<byte>.Empty
        : _line.AsMemory(0, _lineLength > 0 && _line[_lineLength - 1] == '\r' ? _lineLength - 1 : _lineLength);

    /// <summary>Reads the next line; false at the end of the stream (a last line without a newline is still a line).</summary>
    public bool ReadLine()
    {
        if (_finished) return false;
        Start = _offset;
        Length = 0;
        _lineLength = 0;
        while (true)
        {
            if (_chunkStart == _chunkEnd)
            {
                int read = stream.Read(_chunk);
                if (read == 0)
                {
                    _finished = true;
                    if (Length == 0) return false;
                    Terminated = false;
                    Number++;
                    return true;
                }
                _chunkStart = 0;
                _chunkEnd = read;
            }
            var available = _chunk.AsSpan(_chunkStart, _chunkEnd - _chunkStart);
            int newline = available.IndexOf((byte)'\n');
            var piece = newline < 0 ? available : available[..newline];
            Keep(piece);
            int consumed = newline < 0 ? piece.Length : newline + 1;
            _chunkStart += consumed;
            _offset += consumed;
            if (newline >= 0)
            {
                Terminated = true;
                Number++;
                return true;
            }
        }
    }

    private void Keep(ReadOnlySpan<byte> piece)
    {
        Length += piece.Length;
        if (TooLong || piece.IsEmpty) return;
        if (_lineLength + piece.Length > _line.Length)
            Array.Resize(ref _line, (int)Math.Min(maxLineBytes, Math.Max(2L * _line.Length, _lineLength + piece.Length)));
        piece.CopyTo(_line.AsSpan(_lineLength));
        _lineLength += piece.Length;
    }
}
