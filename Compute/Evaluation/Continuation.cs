namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// The lm-evaluation-harness style split of a sequence into a context and a continuation: the
/// continuation is the last quarter of the sequence (rounded up), at least <see cref="MinTokens"/>
/// tokens, and the context is the rest, at least one token. Quality is measured on the predictions of
/// the continuation's tokens, while pruning applies to the whole sequence — so a method that damages the
/// context only shows it through what the continuation's predictions lose.
/// </summary>
public static class Continuation
{
    public const int MinTokens = 8;

    /// <summary>The shortest sequence that has a context (one token) and a continuation.</summary>
    public const int MinSequenceLength = MinTokens + 1;

    /// <summary>The index of the continuation's first token in a sequence of <paramref name="length"/> tokens.</summary>
    public static int Start(int length)
    {
        if (length < MinSequenceLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"a sequence needs at least {MinSequenceLength} tokens: a context and a continuation of {MinTokens}");
        return length - Math.Max(MinTokens, (length + 3) / 4);
    }

    /// <summary>
    /// The rows of a sequence's logits that predict its continuation: row r predicts token r + 1, so the
    /// continuation [start, length) is predicted by rows [start - 1, length - 1).
    /// </summary>
    public static Range PredictingRows(int length) => (Start(length) - 1)..(length - 1);
}
