namespace FtpCluster.Compute.Inference;

/// <summary>One row of a batch: a token of some sequence (its KV cache) at its original position.</summary>
public readonly record struct TokenRow(KvCache Cache, int Position)
{
    /// <summary>The rows of <paramref name="count"/> consecutive tokens of one sequence, from <paramref name="firstPosition"/>.</summary>
    public static TokenRow[] Consecutive(KvCache cache, int firstPosition, int count)
    {
        var rows = new TokenRow[count];
        for (int i = 0; i < count; i++) rows[i] = new TokenRow(cache, firstPosition + i);
        return rows;
    }
}
