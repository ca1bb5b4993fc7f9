namespace FtpCluster.Compute.Devices;

/// <summary>
/// One sequence's share of a microbatch for the operations that take several sequences at once: its rows
/// [<see cref="FirstRow"/>, <see cref="FirstRow"/> + <see cref="Rows"/>) of the microbatch, and spans of its KV cache.
/// For <see cref="IComputeDevice.AppendToCaches"/> the spans are the cache's room for those rows' entries; for
/// <see cref="IComputeDevice.Attention(DeviceSpan{float}, DeviceSpan{int}, IReadOnlyList{SequenceCache}, int, int, int, DeviceSpan{float})"/>
/// they are every entry the cache holds. Keys and values are [entries, kvDim]; positions one per entry. The sequences
/// of one call have consecutive rows, in order (a microbatch keeps each sequence's rows together).
/// </summary>
public readonly record struct SequenceCache(int FirstRow, int Rows, DeviceSpan<float> Keys, DeviceSpan<float> Values, DeviceSpan<int> Positions)
{
    /// <summary>Entries the spans hold.</summary>
    public int Entries => Positions.Length;
}
