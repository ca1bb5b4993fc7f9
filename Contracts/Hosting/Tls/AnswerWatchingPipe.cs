using System.IO.Pipelines;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// The decrypted side of a TLS connection this process opened, watched for the peer's first bytes. With TLS 1.3 the
/// connecting side finishes its handshake before the server has checked its certificate: a server that refuses it
/// closes the connection after the handshake, without a byte of Orleans' own greeting, and only that silence tells.
/// </summary>
internal sealed class AnswerWatchingPipe(IDuplexPipe inner, Action answered) : IDuplexPipe
{
    public PipeReader Input { get; } = new WatchedReader(inner.Input, answered);

    public PipeWriter Output => inner.Output;

    /// <summary>Passes every call on; until data has arrived, it looks at what each read returns.</summary>
    private sealed class WatchedReader(PipeReader inner, Action answered) : PipeReader
    {
        private bool _answered;

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
            _answered ? inner.ReadAsync(cancellationToken) : Watch(inner.ReadAsync(cancellationToken));

        public override bool TryRead(out ReadResult result)
        {
            bool read = inner.TryRead(out result);
            if (read) Look(result);
            return read;
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        private async ValueTask<ReadResult> Watch(ValueTask<ReadResult> reading)
        {
            var result = await reading;
            Look(result);
            return result;
        }

        private void Look(ReadResult result)
        {
            if (_answered || result.Buffer.IsEmpty) return;
            _answered = true;
            answered();
        }
    }
}
