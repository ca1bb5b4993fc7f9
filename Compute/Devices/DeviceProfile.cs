namespace FtpCluster.Compute.Devices;

/// <summary>
/// Device time by kind of operation over a profiled stretch of work (<see cref="IlgpuDevice.StartProfile"/>): each
/// operation timed on the device between markers recorded just before and just after it. Time the device spends
/// waiting for the host to launch the next operation is in no operation's time.
/// </summary>
public sealed record DeviceProfile(IReadOnlyList<DeviceProfile.Operation> Operations)
{
    /// <summary>One kind ("gemv f16", "gemm add q8_0", "swiglu gemv bf16", "rmsnorm", "copy"...): how many ran, their device seconds in all.</summary>
    public sealed record Operation(string Kind, long Count, double Seconds);

    /// <summary>Device seconds of every operation.</summary>
    public double BusySeconds => Operations.Sum(o => o.Seconds);

    /// <summary>Operations in all.</summary>
    public long Count => Operations.Sum(o => o.Count);
}
