namespace FtpCluster.Grains.Wire;

/// <summary>What travels with one hidden row: whose token it is and the router feature the next stage needs.</summary>
/// <param name="SequenceId">The sequence the token belongs to.</param>
/// <param name="Position">The token's original position in its sequence (RoPE uses it even after skips).</param>
/// <param name="AttentionScore">The attention the token received where it was last computed.</param>
public readonly record struct PacketRow(long SequenceId, int Position, float AttentionScore);

/// <summary>
/// Activations one stage sends to the next: a header naming the deployment, microbatch and boundary,
/// one <see cref="PacketRow"/> per row, and the hidden rows themselves, row-major [rows, hidden].
/// </summary>
public sealed class ActivationPacket
{
    public ActivationPacket(string deploymentId, long microbatchId, int sourceStage, int targetStage,
        int hiddenSize, PacketRow[] rows, float[] hiddenStates)
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

        DeploymentId = deploymentId;
        MicrobatchId = microbatchId;
        SourceStage = sourceStage;
        TargetStage = targetStage;
        HiddenSize = hiddenSize;
        Rows = rows;
        HiddenStates = hiddenStates;
    }

    public string DeploymentId { get; }

    public long MicrobatchId { get; }

    public int SourceStage { get; }

    public int TargetStage { get; }

    public int HiddenSize { get; }

    public PacketRow[] Rows { get; }

    /// <summary>Row-major [<see cref="RowCount"/>, <see cref="HiddenSize"/>].</summary>
    public float[] HiddenStates { get; }

    public int RowCount => Rows.Length;

    public ReadOnlySpan<float> HiddenRow(int row) => HiddenStates.AsSpan(row * HiddenSize, HiddenSize);
}

/// <summary>A packet's header as read from the wire, without decoding its rows.</summary>
public sealed record PacketHeader(int FormatVersion, string DeploymentId, long MicrobatchId,
    int SourceStage, int TargetStage, int RowCount, int HiddenSize, WireEncoding Encoding);
