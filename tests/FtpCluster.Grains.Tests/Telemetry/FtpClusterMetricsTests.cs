using System.Diagnostics.Metrics;
using FtpCluster.Grains.Telemetry;
using FtpCluster.Grains.Wire;
using static FtpCluster.Grains.Telemetry.FtpClusterTelemetry;

namespace FtpCluster.Grains.Tests.Telemetry;

public sealed class FtpClusterMetricsTests : IDisposable
{
    private readonly Meter _meter = new("FtpCluster.Tests." + Guid.NewGuid().ToString("N"));
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measured = [];
    private readonly FtpClusterMetrics _metrics;

    public FtpClusterMetricsTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == _meter) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Measured(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Measured(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Measured(i, v, tags));
        _listener.Start();
        _metrics = new FtpClusterMetrics(_meter);
    }

    private void Measured(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) =>
        _measured.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));

    public void Dispose()
    {
        _listener.Dispose();
        _meter.Dispose();
    }

    [Fact]
    public void Block_tokens_count_computed_and_skipped_rows_per_block()
    {
        Assert.True(_metrics.BlockTokensEnabled);

        _metrics.RecordBlockTokens("dep", [5, 3, 0], rows: 5);

        var computed = _measured.Where(m => m.Instrument == Instruments.TokensComputed).ToArray();
        var skipped = _measured.Where(m => m.Instrument == Instruments.TokensSkipped).ToArray();
        Assert.Equal([5.0, 3, 0], computed.Select(m => m.Value));
        Assert.Equal([0.0, 2, 5], skipped.Select(m => m.Value));
        Assert.Equal([0, 1, 2], computed.Select(m => (int)m.Tags[Attributes.Block]!));
        Assert.All(computed.Concat(skipped), m => Assert.Equal("dep", m.Tags[Attributes.Deployment]));
    }

    [Fact]
    public void Wire_bytes_carry_deployment_boundary_target_and_encoding()
    {
        _metrics.RecordWireBytes("dep", sourceStage: 1, targetStage: 3, WireEncoding.Int8PerBlock32, 500);

        var (instrument, value, tags) = Assert.Single(_measured);
        Assert.Equal(Instruments.WireBytes, instrument);
        Assert.Equal(500, value);
        Assert.Equal(new Dictionary<string, object?>
        {
            [Attributes.Deployment] = "dep", [Attributes.Boundary] = 1, [Attributes.TargetStage] = 3, [Attributes.Encoding] = "int8",
        }, tags);
    }

    [Fact]
    public void A_finished_request_records_its_duration_token_usage_and_time_per_output_token()
    {
        var labels = new GenerationLabels(Values.ChatOperation, "aidreams", "dep");

        _metrics.RecordRequest(labels, seconds: 2.0, firstTokenSeconds: 0.5, inputTokens: 7, outputTokens: 4);

        Assert.Equal(2.0, _measured.Single(m => m.Instrument == Instruments.RequestDuration).Value);
        Assert.Equal(0.5, _measured.Single(m => m.Instrument == Instruments.TimePerOutputToken).Value, 9);
        var usage = _measured.Where(m => m.Instrument == Instruments.TokenUsage).ToDictionary(m => (string)m.Tags[Attributes.TokenType]!, m => m.Value);
        Assert.Equal(new Dictionary<string, double> { [Values.InputTokens] = 7, [Values.OutputTokens] = 4 }, usage);
        Assert.All(_measured, m =>
        {
            Assert.Equal("chat", m.Tags[Attributes.OperationName]);
            Assert.Equal("aidreams", m.Tags[Attributes.RequestModel]);
            Assert.Equal(Values.Provider, m.Tags[Attributes.ProviderName]);
        });
    }

    [Fact]
    public void One_output_token_has_no_time_per_output_token()
    {
        _metrics.RecordRequest(new GenerationLabels(Values.TextCompletionOperation, "m", "dep"), 1.0, 1.0, inputTokens: 3, outputTokens: 1);

        Assert.DoesNotContain(_measured, m => m.Instrument == Instruments.TimePerOutputToken);
    }

    [Fact]
    public void Gauges_report_the_published_snapshots_of_tracked_stages_and_queues_only()
    {
        var stage = new StageGauge("dep", 1);
        var queue = new QueueGauge("dep");
        var tracking = _metrics.Track(stage);
        using var queueTracking = _metrics.Track(queue);
        stage.Publish(4096);
        queue.PublishWaiting(3);
        queue.PublishOnline(2);

        _listener.RecordObservableInstruments();
        Assert.Equal(4096, _measured.Single(m => m.Instrument == Instruments.KvCacheBytes).Value);
        Assert.Equal(3, _measured.Single(m => m.Instrument == Instruments.SequencesWaiting).Value);
        Assert.Equal(2, _measured.Single(m => m.Instrument == Instruments.OnlineRequests).Value);
        Assert.Equal(1, _measured.Single(m => m.Instrument == Instruments.KvCacheBytes).Tags[Attributes.Stage]);

        tracking.Dispose();
        _measured.Clear();
        _listener.RecordObservableInstruments();
        Assert.DoesNotContain(_measured, m => m.Instrument == Instruments.KvCacheBytes);
    }

    [Fact]
    public void Batch_lines_count_by_job_and_outcome()
    {
        _metrics.RecordBatchLines("job_1", completed: 4, failed: 1);

        Assert.Equal([("completed", 4.0), ("failed", 1.0)],
            _measured.Select(m => ((string)m.Tags[Attributes.Outcome]!, m.Value)));
        Assert.All(_measured, m => Assert.Equal("job_1", m.Tags[Attributes.Job]));
    }
}
