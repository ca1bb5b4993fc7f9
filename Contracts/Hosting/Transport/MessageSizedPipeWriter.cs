using System.IO.Pipelines;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// The writing end of a connection's output pipe as Orleans sees it: it remembers how large the large messages
/// written through it are, and from then on answers every request for a buffer with one that holds such a
/// message whole, so that Orleans serializes a large message straight into the buffer the socket sends from.
/// </summary>
/// <remarks>
/// Orleans' message serializer asks its output for about 4 KiB at the start of each message and writes the
/// message into whatever it gets; what does not fit goes to 4 KiB side buffers of its own, which it then copies
/// into one contiguous buffer of the whole remaining size (that second request is how a large message first
/// shows its size here). So with small pipe segments every large message is copied twice before it is sent;
/// with a buffer that holds it, once. Sizes at or below the pipe's minimum segment size teach nothing (those
/// messages fit anyway), sizes are learned up to <c>largestBytes</c>, and what was learned is forgotten
/// <see cref="ForgetAfterMilliseconds"/> after the last large message, so a connection that stops carrying
/// large messages goes back to small buffers. Buffers are the output pipe's (the shared array pool's, returned
/// once sent); only one writer uses it at a time, as with any <see cref="PipeWriter"/>.
/// </remarks>
/// <param name="milliseconds">The clock learned sizes age by; <see cref="Environment.TickCount64"/> unless a test gives another.</param>
internal sealed class MessageSizedPipeWriter(PipeWriter inner, int minimumSegmentBytes, int largestBytes, Func<long>? milliseconds = null) : PipeWriter
{
    /// <summary>How long a learned size is kept without a large message to renew it.</summary>
    public const long ForgetAfterMilliseconds = 10_000;

    private readonly Func<long> _milliseconds = milliseconds ?? (static () => Environment.TickCount64);
    private int _learnedBytes;
    private long _learnedAt;

    /// <summary>The message size this writer currently sizes buffers for; 0 when it knows of none.</summary>
    public int LearnedBytes => _learnedBytes;

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(BufferSizeFor(sizeHint));

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(BufferSizeFor(sizeHint));

    public override void Advance(int bytes)
    {
        Learn(bytes);
        inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    /// <summary>The size to ask the pipe for: the caller's, or a learned message size and a segment of room when larger.</summary>
    internal int BufferSizeFor(int sizeHint)
    {
        Learn(sizeHint);
        if (_learnedBytes == 0) return sizeHint;
        if (_milliseconds() - _learnedAt > ForgetAfterMilliseconds)
        {
            _learnedBytes = 0;
            return sizeHint;
        }
        // The room covers what the first 4 KiB request and a message's header add to the size learned.
        return Math.Max(sizeHint, _learnedBytes + minimumSegmentBytes);
    }

    /// <summary>
    /// A buffer request or a write of <paramref name="bytes"/>: a size above the minimum segment raises the learned
    /// size, and one at least half of it keeps it from being forgotten.
    /// </summary>
    private void Learn(int bytes)
    {
        if (bytes <= minimumSegmentBytes) return;
        long now = _milliseconds();
        if (now - _learnedAt > ForgetAfterMilliseconds) _learnedBytes = 0;
        if (bytes < _learnedBytes / 2) return;
        _learnedBytes = Math.Max(_learnedBytes, Math.Min(bytes, largestBytes));
        _learnedAt = now;
    }
}
