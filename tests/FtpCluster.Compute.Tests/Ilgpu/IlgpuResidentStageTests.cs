using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>
/// Stages of the small shared models on <see cref="IlgpuDevice"/> against the same stages on <see cref="CpuDevice"/>:
/// the hidden rows every microbatch leaves a stage with and the logits, to 1e-5, through dense and FTP-pruned
/// microbatches, prefill and decode; and each microbatch crosses between host and device once each way, the last
/// stage's too (<see cref="TransformerStage.ForwardToLogits"/>: its rows go up and only the logits come down). The CPU
/// stages take the reference path: <see cref="TransformerStage.Forward"/>, then the logits of the rows it returned.
/// </summary>
public sealed class IlgpuResidentStageTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    /// <summary>Two sequences in one microbatch: A with 7 prompt tokens, B with 5.</summary>
    private static readonly int[] PromptA = [1, 45, 300, 7, 99, 12, 410], PromptB = [1, 77, 5, 260, 31];

    /// <summary>
    /// A prefill (pruned for one model, dense for the other), a dense decode step and a pruned one: a microbatch
    /// takes the ILGPU CPU accelerator seconds per stage, so each kind runs once or twice.
    /// </summary>
    [SharedModelsTheory]
    [InlineData("stories260K/stories260K.bin", true)]
    [InlineData("aidreams260K/aidreams260K.bin", false)]
    public void Stage_on_the_device_matches_the_cpu_with_one_upload_and_one_download_per_microbatch(string model, bool prunedPrefill)
    {
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo(model.Split('/')));
        var config = checkpoint.Config;
        // Two stages, as a cluster would cut the model: the first with the embedding, the second with the head.
        int cut = config.Layers / 2;
        SliceSpec[] slices = [new(0, cut, true, false), new(cut, config.Layers, false, true)];
        var onCpu = new StagePair(checkpoint, slices, fixture.Cpu);
        var onIlgpu = new StagePair(checkpoint, slices, fixture.Ilgpu);
        try
        {
            int[] prompt = [.. PromptA, .. PromptB];
            var prefillRows = (KvCache[] caches) => Enumerable.Range(0, prompt.Length)
                .Select(i => i < PromptA.Length ? new TokenRow(caches[0], i) : new TokenRow(caches[1], i - PromptA.Length)).ToArray();
            // Generation needs each sequence's last prompt row.
            int[] lastRows = [PromptA.Length - 1, prompt.Length - 1];
            AssertMicrobatchMatches(onCpu, onIlgpu, prompt, prefillRows, lastRows, prunedPrefill ? PrefillPlan : null,
                prunedPrefill ? "pruned prefill" : "dense prefill");

            for (int step = 0; step < 2; step++)
            {
                int[] tokens = [3 + step, 17 + step];
                int s = step;
                var decodeRows = (KvCache[] caches) => new[] { new TokenRow(caches[0], PromptA.Length + s), new TokenRow(caches[1], PromptB.Length + s) };
                bool pruned = step == 1;
                AssertMicrobatchMatches(onCpu, onIlgpu, tokens, decodeRows, [0, 1], pruned ? DecodePlan(step) : null,
                    pruned ? "pruned decode" : "dense decode");
            }
        }
        finally
        {
            onCpu.Dispose();
            onIlgpu.Dispose();
        }
    }

    /// <summary>FTP in prefill: per block of the whole model, the rows it computes (A's rows 0-6, B's 7-11); blocks past the plan compute all.</summary>
    private static int[]? PrefillPlan(int layer) => layer switch
    {
        0 => null,
        1 => [0, 2, 4, 5, 6, 7, 9, 11],
        2 => [0, 2, 4, 5, 6, 7, 9, 11],
        3 => [0, 6, 7, 10, 11],
        _ => null,
    };

    /// <summary>FTP in decode: a block skips one sequence's new row, or both.</summary>
    private static Func<int, int[]?> DecodePlan(int step) => layer => ((layer + step) % 3) switch
    {
        0 => null,
        1 => [1],
        _ => layer == 2 ? [] : [0],
    };

    private void AssertMicrobatchMatches(StagePair cpu, StagePair ilgpu, int[] tokens, Func<KvCache[], TokenRow[]> rowsOver,
        int[] logitRows, Func<int, int[]?>? plan, string what)
    {
        var expected = cpu.Run(tokens, rowsOver, logitRows, plan, throughLogits: false, out _);
        var actual = ilgpu.Run(tokens, rowsOver, logitRows, plan, throughLogits: true, out var transfers);
        // The last stage's rows stay on the device: only the logits leave it.
        for (int stage = 0; stage < actual.Hidden.Length - 1; stage++)
            Numerics.AssertClose(expected.Hidden[stage], actual.Hidden[stage], what: $"{what}: rows leaving stage {stage}");
        Numerics.AssertClose(expected.Logits, actual.Logits, what: $"{what}: logits");
        foreach (var (stage, forward) in transfers.Index())
        {
            bool last = stage == transfers.Length - 1;
            Assert.True(forward.Uploads == 1, $"{what}, stage {stage}: {forward.Uploads} uploads, expected 1");
            Assert.True(forward.Downloads == 1, $"{what}, stage {stage}: {forward.Downloads} downloads, expected 1");
            long rowBytes = last ? ilgpu.Config.VocabSize * sizeof(float) : ilgpu.Config.Dim * sizeof(float);
            Assert.Equal((last ? logitRows.Length : tokens.Length) * rowBytes, forward.DownloadedBytes);
        }
    }

    /// <summary>A model cut into stages on one device, with one cache per stage for each of the two sequences.</summary>
    private sealed class StagePair : IDisposable
    {
        private readonly TransformerStage[] _stages;
        private readonly KvCache[][] _caches;

        public StagePair(ICheckpoint checkpoint, SliceSpec[] slices, IComputeDevice device)
        {
            _stages = [.. slices.Select(s => new TransformerStage(ModelSlice.Load(checkpoint, s, device), device))];
            _caches = [.. _stages.Select(s => new[] { s.NewCache(), s.NewCache() })];
            Device = device;
        }

        public IComputeDevice Device { get; }
        public ModelConfig Config => _stages[0].Config;

        /// <summary>
        /// Every stage's blocks in turn, then the logits of <paramref name="logitRows"/>: through
        /// <see cref="TransformerStage.ForwardToLogits"/> on the last stage, or its Forward and then the logits of the
        /// rows it returned. Also the host-device copies each stage made.
        /// </summary>
        public (float[][] Hidden, float[] Logits) Run(int[] tokens, Func<KvCache[], TokenRow[]> rowsOver, int[] logitRows,
            Func<int, int[]?>? plan, bool throughLogits, out DeviceTransfers[] stageTransfers)
        {
            int dim = Config.Dim, vocab = Config.VocabSize;
            var hidden = new float[tokens.Length * dim];
            _stages[0].Embed(tokens, hidden);
            var leaving = new float[_stages.Length][];
            var logits = new float[logitRows.Length * vocab];
            stageTransfers = new DeviceTransfers[_stages.Length];
            for (int s = 0; s < _stages.Length; s++)
            {
                var spec = _stages[s].Slice.Spec;
                int[]?[]? computeRows = plan is null ? null : [.. Enumerable.Range(spec.FirstLayer, spec.LayerCount).Select(plan)];
                var before = Device.Transfers;
                if (s == _stages.Length - 1 && throughLogits)
                    _stages[s].ForwardToLogits(rowsOver(_caches[s]), hidden, computeRows, logitRows,
                        (first, group) => group.CopyTo(logits.AsSpan(first * vocab)));
                else
                    _stages[s].Forward(rowsOver(_caches[s]), hidden, computeRows);
                stageTransfers[s] = Device.Transfers - before;
                leaving[s] = [.. hidden];
            }
            if (!throughLogits)
                _stages[^1].Logits([.. logitRows.SelectMany(r => hidden.AsSpan(r * dim, dim).ToArray())], logitRows.Length, logits);
            return (leaving, logits);
        }

        public void Dispose()
        {
            foreach (var cache in _caches.SelectMany(c => c)) cache.Dispose();
            foreach (var stage in _stages) stage.Dispose();
        }
    }
}
