using FtpCluster.Compute.Evaluation;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class ContinuationTests
{
    [Theory]
    [InlineData(9, 1)]      // the shortest: one context token, eight continuation tokens
    [InlineData(20, 12)]    // a quarter would be 5: the minimum of 8 wins
    [InlineData(32, 24)]    // exactly a quarter, 8
    [InlineData(33, 24)]    // a quarter of 33 rounds up to 9
    [InlineData(100, 75)]
    [InlineData(128, 96)]
    public void The_continuation_is_the_last_quarter_and_at_least_8_tokens(int length, int start)
    {
        Assert.Equal(start, Continuation.Start(length));
        int continuation = length - start;
        Assert.True(continuation >= Continuation.MinTokens);
        Assert.True(continuation >= length / 4.0);
        Assert.True(continuation < length / 4.0 + 1 || continuation == Continuation.MinTokens);
    }

    [Fact]
    public void The_continuation_tokens_are_predicted_by_the_rows_just_before_them()
    {
        // Row r predicts token r + 1: tokens 24..31 come from rows 23..30.
        var (first, count) = Continuation.PredictingRows(32).GetOffsetAndLength(32);
        Assert.Equal(23, first);
        Assert.Equal(8, count);
    }

    [Fact]
    public void A_sequence_without_room_for_a_context_is_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Continuation.Start(8));
        Assert.Contains("at least 9 tokens", e.Message);
    }
}
