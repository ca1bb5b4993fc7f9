using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Benchmarks;

/// <summary>
/// The sending end of a transport measurement, pinned to its node (<c>ID@NODE</c>). It sends packets to
/// a sink on another node and times its own calls, so the figure is silo to silo, as one stage sends to
/// the next, with no client or gateway in the path.
/// </summary>
[Alias("FtpCluster.ITransportProbeGrain")]
public interface ITransportProbeGrain : IGrainWithStringKey
{
    [Alias("Measure")]
    Task<TransportMeasurement> Measure(TransportProbeRequest request);

    /// <summary>
    /// Sends <paramref name="step"/> to the sink keyed <paramref name="sinkKey"/> (on another node) and answers what
    /// the sink sent back: a step that crossed silo to silo both ways, for checking it arrived intact.
    /// </summary>
    [Alias("Relay")]
    Task<StepRequest> Relay(string sinkKey, StepRequest step);
}

/// <summary>The receiving end: takes a packet as a stage takes a step, answers with the byte count it got.</summary>
[Alias("FtpCluster.ITransportSinkGrain")]
public interface ITransportSinkGrain : IGrainWithStringKey
{
    /// <summary>Receives <paramref name="step"/>'s packet; answers its length.</summary>
    [Alias("Receive")]
    Task<int> Receive(StepRequest step);

    [Alias("Totals")]
    Task<TransportSinkTotals> Totals();

    /// <summary>Answers <paramref name="step"/> as it arrived (not counted in <see cref="Totals"/>).</summary>
    [Alias("Echo")]
    Task<StepRequest> Echo(StepRequest step);
}
