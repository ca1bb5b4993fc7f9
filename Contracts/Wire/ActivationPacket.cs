namespace FtpCluster.Grains.Wire;

/// <summary>What travels with one hidden row: whose token it is, where it stands in its microbatch, and whether its logits are wanted.</summary>
/// <param name="SequenceId">The sequence the token belongs to.</param>
/// <param name="Position">The token's original position in its sequence (RoPE uses it even after skips).</param>
/// <param name="RowIndex">The row's index in its microbatch as the coordinator sent it: rows that reach a stage
/// by different routes are put back in this order, and sample requests name rows by it.</param>
/// <param name="NeedsLogits">The last stage must see this row (it is sampled after, or scored), even if no block there computes it.</param>
public readonly record struct PacketRow(long SequenceId, int Position, int RowIndex = 0, bool NeedsLogits = false);

/// <summary>
/// Activations one stage sends to the next: a header naming the deployment, microbatch and boundary,
/// one <see cref="PacketRow"/> per row, which blocks compute each row (<see cref="Plan"/>), and the hidden
/// rows themselves, row-major [rows, hidden].
/// </summary>
public sealed class ActivationPacket
{
    public ActivationPacket(string deploymentId, long microbatchId, int sourceStage, int targetStage,
        int hiddenSize, PacketRow[] rows, float[] hiddenStates, RowBlockPlan? plan = null)
    {
        ArgumentNullException.ThrowIfNull(deploymentId);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(hiddenStates);
        ArgumentOutOfRangeException.ThrowIfNegative(sourceStage);
        ArgumentOutOfRangeException.ThrowIfNegative(targetStage);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        if (hiddenStates.Length != (long)rows.Length * hiddenSize)
            throw new ArgumentException(
                $"{rows.Length} rows of hidden size {hiddenSize} need {(long)rows.Length * hiddenSize} values, got {hiddenStates.Length}",
                nameof(hiddenStates));
        if (plan is not null && plan.Rows != rows.Length)
            throw new ArgumentException($"the plan covers {plan.Rows} rows of a {rows.Length}-row packet", nameof(plan));

        DeploymentId = deploymentId;
        MicrobatchId = microbatchId;
        SourceStage = sourceStage;
        TargetStage = targetStage;
        HiddenSize = hiddenSize;
        Rows = rows;
        HiddenStates = hiddenStates;
        Plan = plan;
    }

    public string DeploymentId { get; }

    public long MicrobatchId { get; }

    public int SourceStage { get; }

    public int TargetStage { get; }

    public int HiddenSize { get; }

    public PacketRow[] Rows { get; }

    /// <summary>Row-major [<see cref="RowCount"/>, <see cref="HiddenSize"/>].</summary>
    public float[] HiddenStates { get; }

    /// <summary>Which blocks compute each row (FTP's one-pass plan); null when every block computes every row.</summary>
    public RowBlockPlan? Plan { get; }

    public int RowCount => Rows.Length;

    public ReadOnlySpan<float> HiddenRow(int row) => HiddenStates.AsSpan(row * HiddenSize, HiddenSize);
}

/// <summary>A packet's header as read from the wire, without decoding its rows.</summary>
/// <param name="PlanLayers">The layers the rows' plan covers; 0 when the packet carries no plan.</param>
public sealed record PacketHeader(int FormatVersion, string DeploymentId, long MicrobatchId,
    int SourceStage, int TargetStage, int RowCount, int HiddenSize, WireEncoding Encoding, int PlanLayers);
