using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// Where a row goes when a stage is done with it. A row travels from the stage that last changed it
/// straight to the next stage that computes it, so a token that FTP skips in a whole stage never crosses
/// to it; the last stage also gets the rows whose logits it must produce.
/// </summary>
public static class RowRoutes
{
    /// <summary>No stage needs the row any more: its KV-cache entries are made and no logits are asked of it.</summary>
    public const int Nowhere = -1;

    /// <summary>The stage row <paramref name="row"/> of a packet goes to after stage <paramref name="stage"/>.</summary>
    /// <param name="plan">The packet's plan; null when every block computes every row.</param>
    /// <param name="stageEnds">Each stage's end layer: stage i holds layers [stageEnds[i - 1], stageEnds[i]).</param>
    public static int Next(int stage, int row, PacketRow metadata, RowBlockPlan? plan, IReadOnlyList<int> stageEnds)
    {
        int last = stageEnds.Count - 1;
        if (stage >= last) return Nowhere;
        if (plan is null) return stage + 1;
        for (int next = stage + 1; next <= last; next++)
            if (plan.ComputesAny(row, stageEnds[next - 1], stageEnds[next]))
                return next;
        return metadata.NeedsLogits ? last : Nowhere;
    }
}
