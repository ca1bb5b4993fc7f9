namespace FtpCluster.Compute.Ftp;

public enum RouterKind
{
    /// <summary>First token, then the most recent: <see cref="StaticRouter"/>.</summary>
    Static,

    /// <summary>Uniform random skipping: <see cref="RandomRouter"/>.</summary>
    Random,

    /// <summary>The calibrated MLP: <see cref="LearnedRouter"/>.</summary>
    Learned,
}

/// <summary>
/// Ranks a sequence's tokens for a block: the block keeps its quota of them with the highest priority
/// (<see cref="TokenSelection.Choose"/>). Routers see only <see cref="RouterFeatures"/>.
/// </summary>
public interface ITokenRouter
{
    RouterKind Kind { get; }

    /// <summary>
    /// Writes each token's priority; <paramref name="tokens"/> are one sequence's new rows, oldest first.
    /// May draw random numbers (<see cref="RandomRouter"/>), so results depend on the order of calls.
    /// </summary>
    void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority);

    /// <summary>
    /// With decode pruning on: whether the newest token is computed, given its features and the priority
    /// <see cref="Prioritize"/> gave it. It is decided alone, not by rank.
    /// </summary>
    bool KeepsNewest(in RouterFeatures newest, float priority);
}

/// <summary>The one rule that turns a router's priorities into the tokens a block computes.</summary>
public static class TokenSelection
{
    /// <summary>
    /// Chooses which of one sequence's new tokens (oldest first) a block computes. The newest token's
    /// output is the one generation uses, so by default it is always computed and the other
    /// <paramref name="kept"/> − 1 places go to the highest priorities among the rest (ties to the newer
    /// token). With <paramref name="pruneNewest"/> (decode pruning) the router decides the newest alone
    /// (<see cref="ITokenRouter.KeepsNewest"/>) and the rest still get <paramref name="kept"/> − 1 places,
    /// so a one-token decode step is computed exactly when the router says so.
    /// </summary>
    /// <param name="kept">The block's quota, from <see cref="SparsitySchedule.KeptOf"/>: at least 1 when there are tokens.</param>
    /// <param name="keep">Receives true for each token computed.</param>
    public static void Choose(ITokenRouter router, ReadOnlySpan<RouterFeatures> tokens, int kept, bool pruneNewest, Span<bool> keep)
    {
        int n = tokens.Length;
        if (keep.Length != n) throw new ArgumentException($"{keep.Length} decisions for {n} tokens");
        keep.Clear();
        if (n == 0) return;
        if (kept < 1 || kept > n) throw new ArgumentOutOfRangeException(nameof(kept), $"a block keeps between 1 and {n} of {n} tokens, not {kept}");
        var priority = new float[n];
        router.Prioritize(tokens, priority);
        int newest = n - 1;
        keep[newest] = !pruneNewest || router.KeepsNewest(tokens[newest], priority[newest]);

        var others = new int[newest];
        for (int i = 0; i < others.Length; i++) others[i] = i;
        Array.Sort(others, (a, b) => priority[a] != priority[b] ? priority[b].CompareTo(priority[a]) : b.CompareTo(a));
        for (int i = 0; i < kept - 1; i++) keep[others[i]] = true;
    }
}
