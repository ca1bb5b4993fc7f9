namespace FtpCluster.Compute.Ftp;

/// <summary>
/// FTP's static router: keep the first token (it collects attention from every later one), then the most
/// recent; skip the oldest first (positions 1, 2, ...). No training; it seeds the schedule search and
/// guides the learned router.
/// </summary>
public sealed class StaticRouter : ITokenRouter
{
    public RouterKind Kind => RouterKind.Static;

    public void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority)
    {
        for (int i = 0; i < tokens.Length; i++)
            priority[i] = tokens[i].Position == 0 ? float.PositiveInfinity : tokens[i].Position;
    }

    /// <summary>The newest token is the most recent: always kept.</summary>
    public bool KeepsNewest(in RouterFeatures newest, float priority) => true;
}
