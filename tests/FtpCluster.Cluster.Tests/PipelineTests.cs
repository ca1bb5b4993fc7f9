using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// stories260K (5 layers, grouped-query attention) split over the three silo processes a, b, c: the
/// pipeline's output against the same model run in this process.
/// </summary>
public sealed class PipelineTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    private static readonly int[] Ids = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435];

    private static string ModelPath => SharedModels.PathTo("stories260K", "stories260K.bin");

    private async Task<(ICoordinatorGrain Coordinator, DeployedStage[] Stages)> Deploy(string wire)
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"stories-{wire}-{Guid.NewGuid():N}");
        var stages = await coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 3, Wire: wire));
        return (coordinator, stages);
    }

    private static float[] LocalLogits(int[] ids)
    {
        using var device = new CpuDevice(1);
        using var model = TransformerStage.Load(ModelPath, device);
        return Generator.AllLogits(model, ids);
    }

    private static double RelativeError(float[] expected, float[] actual, int row, int vocab)
    {
        double diff = 0, norm = 0;
        for (int i = row * vocab; i < (row + 1) * vocab; i++)
        {
            diff += (double)(actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    [SharedModelsFact]
    public async Task Stages_land_on_the_planned_silos_checked_through_the_silos()
    {
        var (coordinator, stages) = await Deploy("f32");
        Assert.Equal(["a", "b", "c"], stages.Select(s => s.NodeName));
        Assert.Equal(0, stages[0].FirstLayer);
        Assert.Equal(5, stages[^1].EndLayer);
        var reports = await coordinator.Reports();
        for (int i = 0; i < stages.Length; i++)
        {
            Assert.Equal(stages[i].NodeName, reports[i].NodeName);
            Assert.Equal(cluster.Nodes[stages[i].NodeName].Process.ProcessId, reports[i].ProcessId);
            Assert.Equal((stages[i].FirstLayer, stages[i].EndLayer), (reports[i].FirstLayer, reports[i].EndLayer));
        }
    }

    [SharedModelsFact]
    public async Task F32_on_the_wire_gives_the_single_process_logits_and_counts_exact_bytes()
    {
        var (coordinator, stages) = await Deploy("f32");
        var result = await coordinator.Score(Ids);
        var expected = LocalLogits(Ids);
        var actual = result.LogitValues();
        Assert.Equal(expected.Length, actual.Length);
        for (int t = 0; t < Ids.Length; t++)
            Assert.True(RelativeError(expected, actual, t, result.VocabSize) <= 1e-6, $"position {t}");

        // One packet per boundary, of exactly the size the codec's formula gives.
        var reports = await coordinator.Reports();
        long packet = ActivationCodec.EncodedPacketBytes(Ids.Length, 64, WireEncoding.F32, stages[0].GrainKey.Split('/')[0]);
        Assert.Equal([packet, packet, 0L], reports.Select(r => r.BytesSent));
        Assert.Equal([1L, 1L, 0L], reports.Select(r => r.PacketsSent));
    }

    /// <summary>
    /// The encodings round every activation crossing a boundary (f16: relative 2⁻¹¹, bf16: 2⁻⁸, int8: half
    /// a step of blockmax/127 — bounds the wire tests check value by value). This tiny model amplifies
    /// those errors about tenfold by the logits: measured worst relative logit errors over the 12
    /// positions are 1.8e-3 (f16), 2.4e-2 (bf16) and 4.0e-2 (int8), in the ratio of the encodings' own
    /// precision. Each tolerance is about twice its measured figure, so the test catches an encoding
    /// that got worse without failing on the model's sensitivity.
    /// </summary>
    [SharedModelsTheory]
    [InlineData("f16", 4e-3)]
    [InlineData("bf16", 5e-2)]
    [InlineData("int8", 8e-2)]
    public async Task Narrow_encodings_stay_within_their_tolerance(string wire, double tolerance)
    {
        var (coordinator, _) = await Deploy(wire);
        var actual = (await coordinator.Score(Ids)).LogitValues();
        var expected = LocalLogits(Ids);
        double worst = Enumerable.Range(0, Ids.Length).Max(t => RelativeError(expected, actual, t, 512));
        Assert.True(worst <= tolerance, $"{wire}: worst relative logit error {worst:E2} above {tolerance:E0}");
        Assert.True(worst > 0, $"{wire} changed nothing: is the encoding applied?");
    }

    /// <summary>
    /// Quantized stages are stages like any other: prefill (GEMM on dequantized Q8_0 panels) and greedy decode (integer
    /// GEMV on quantized activations) through three silos give the single process's Q8_0 logits and tokens, as the
    /// kernels are deterministic whatever shares a microbatch.
    /// </summary>
    [Fact]
    public async Task Q8_0_stages_give_the_single_process_Q8_0_logits_and_tokens()
    {
        string dir = Directory.CreateTempSubdirectory("ftp-q8-stages-").FullName;
        try
        {
            ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 4, Seed = 5 }, dir);
            var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"q8-{Guid.NewGuid():N}");
            await coordinator.Deploy(new DeploymentRequest(dir, Stages: 3, Storage: "q8_0"));
            int[] ids = [1, 17, 99, 3, 64, 5, 42, 7];

            var scored = await coordinator.Score(ids);
            var generated = await coordinator.Generate(new GenerationRequest([1, 17, 99], MaxTokens: 12, StopTokens: []));
            using var device = new CpuDevice(1);
            using var model = TransformerStage.Load(dir, device, storage: TensorDType.Q8_0);
            var expected = Generator.AllLogits(model, ids);
            var local = Generator.Generate(model, [1, 17, 99], new GenerationOptions { MaxTokens = 12 });

            for (int t = 0; t < ids.Length; t++)
                Assert.True(RelativeError(expected, scored.LogitValues(), t, scored.VocabSize) <= 1e-6, $"position {t}");
            Assert.Equal(local.Ids, generated.Ids);
            await coordinator.Unload();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SharedModelsFact]
    public async Task Greedy_generation_through_three_stages_matches_golden()
    {
        var (coordinator, _) = await Deploy("f32");
        var expected = SharedModels.Golden.GetProperty("stories260K").GetProperty("greedy_from_bos_64_steps")
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var reply = await coordinator.Generate(new GenerationRequest([1], MaxTokens: expected.Length - 1, StopTokens: [1]));
        Assert.Equal(expected, reply.Ids);
    }

    [SharedModelsFact]
    public async Task A_stage_that_lost_its_weights_is_placed_again_and_the_output_is_unchanged()
    {
        var (coordinator, stages) = await Deploy("f32");
        var request = new GenerationRequest([1, 461, 401], MaxTokens: 20, StopTokens: []);
        var before = await coordinator.Generate(request);

        // Orleans drops the middle stage's activation (a client cannot unload a stage: it has no token), and its weights go with it.
        await cluster.Client.GetGrain<IStageGrain>(stages[1].GrainKey).AsReference<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle();
        var after = await coordinator.Generate(request);

        Assert.Equal(before.Ids, after.Ids);
        Assert.Equal(stages.Select(s => (s.NodeName, s.FirstLayer, s.EndLayer)), after.Stages.Select(s => (s.NodeName, s.FirstLayer, s.EndLayer)));
        Assert.All(after.Stages.Zip(stages), pair => Assert.NotEqual(pair.Second.GrainKey, pair.First.GrainKey));
    }

    [SharedModelsFact]
    public async Task Deployments_the_cluster_cannot_serve_are_refused_with_the_reason()
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"refused-{Guid.NewGuid():N}");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 4)));
        Assert.Contains("4 stages need 4 silos, but 3 are up (a, b, c)", error.Message);

        error = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 2, Wire: "int4")));
        Assert.Contains("int4", error.Message);

        // The silos run with Orleans' message body limit set to MessageLimits' figure, and packets must fit under it.
        error = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Deploy(
            new DeploymentRequest(ModelPath, Stages: 2, MaxMessageBytes: MessageLimits.OrleansMaxMessageBodyBytes)));
        Assert.Contains($"message limit must be 1 to {MessageLimits.MaxPacketBytes} bytes (Orleans' message body limit of " +
            $"{MessageLimits.OrleansMaxMessageBodyBytes} less {MessageLimits.EnvelopeBytes}", error.Message);

        string missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}.bin");
        error = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Deploy(new DeploymentRequest(missing, Stages: 2)));
        Assert.Contains(missing, error.Message);

        error = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Generate(new GenerationRequest([1], 4, [])));
        Assert.Contains("has not been deployed", error.Message);
    }

    [SharedModelsFact]
    public async Task Concurrent_requests_of_different_lengths_equal_running_them_one_by_one()
    {
        var (coordinator, _) = await Deploy("f32");
        long microbatchesBefore = (await coordinator.Reports())[0].Microbatches;
        var random = new Random(4);
        var requests = Enumerable.Range(0, 64).Select(i => new GenerationRequest(
            [1, .. Enumerable.Range(0, 1 + i % 5).Select(_ => random.Next(3, 512))],
            MaxTokens: 4 + i % 7, StopTokens: [], Temperature: i % 2 == 0 ? 0 : 0.8f, Seed: i)).ToArray();

        var replies = await Task.WhenAll(requests.Select(coordinator.Generate));

        using var device = new CpuDevice(1);
        using var model = TransformerStage.Load(ModelPath, device);
        for (int i = 0; i < requests.Length; i++)
        {
            var r = requests[i];
            var alone = Generator.Generate(model, r.PromptIds, new GenerationOptions
            {
                MaxTokens = r.MaxTokens,
                Sampling = new SamplingOptions { Temperature = r.Temperature, Seed = r.Seed },
            });
            Assert.Equal(alone.Ids, replies[i].Ids);
        }
        // Every sequence's caches were freed when it finished.
        var reports = await coordinator.Reports();
        Assert.All(reports, report => Assert.Equal(0, report.SequencesInFlight));
        // Steps were shared: no more microbatches in flight than stages, so 64 sequences had to travel together.
        int steps = replies.Sum(r => r.Ids.Length - r.PromptIds.Length); // one per token drawn (no stop tokens)
        Assert.InRange(reports[0].Microbatches - microbatchesBefore, 1, steps / 4);
    }
}
