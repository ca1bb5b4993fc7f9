using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// What a client that reaches the silos cannot do: load a file outside the model roots (refused before it is opened), drive
/// a stage grain without its deployment's token, re-deploy a live deployment with other settings, or flood a silo's port
/// with connections until it stops serving or runs out of memory.
/// </summary>
public sealed class ClusterGuardTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>, IDisposable
{
    /// <summary>A bound on each refusal: a silo that opened a FIFO would wait for a writer forever.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Outside the test silos' roots (<see cref="TestModelRoots"/>): beside the test assembly, not under the temporary folder.</summary>
    private readonly string _outside = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, $"outside-roots-{Guid.NewGuid():N}")).FullName;

    private static string ModelPath => SharedModels.PathTo("stories260K", "stories260K.bin");

    public void Dispose() => Directory.Delete(_outside, recursive: true);

    /// <summary>A named pipe: opening it to read waits until something opens it to write, so a silo that opened it would hang.</summary>
    private string Fifo(string name)
    {
        string path = Path.Combine(_outside, name);
        using var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    [SharedModelsFact]
    public async Task Files_outside_the_model_roots_are_refused_by_name_before_they_are_opened()
    {
        string fifoModel = Fifo("model.bin");
        string fifoTokenizer = Fifo("tokenizer.bin");
        string fifoRouter = Fifo("router.json");
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"outside-{Guid.NewGuid():N}");

        var error = await Assert.ThrowsAsync<PathOutsideModelRootsException>(() => coordinator.Deploy(new DeploymentRequest(fifoModel, Stages: 2)).WaitAsync(Bound));
        Assert.StartsWith($"model '{fifoModel}' is outside the model roots (", error.Message);
        Assert.Contains(SharedModels.Root!, error.Message);

        error = await Assert.ThrowsAsync<PathOutsideModelRootsException>(() =>
            coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 2, Tokenizer: fifoTokenizer)).WaitAsync(Bound));
        Assert.StartsWith($"tokenizer '{fifoTokenizer}' is outside the model roots", error.Message);
        error = await Assert.ThrowsAsync<PathOutsideModelRootsException>(() =>
            coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 2, Routers: [fifoRouter])).WaitAsync(Bound));
        Assert.StartsWith($"router artifact '{fifoRouter}' is outside the model roots", error.Message);

        // Through a link that lives under a root (the temporary folder): where it leads is what counts.
        string link = Path.Combine(Path.GetTempPath(), $"ftp-link-{Guid.NewGuid():N}");
        Directory.CreateSymbolicLink(link, _outside);
        try
        {
            string linked = Path.Combine(link, "model.bin");
            error = await Assert.ThrowsAsync<PathOutsideModelRootsException>(() => coordinator.Deploy(new DeploymentRequest(linked, Stages: 2)).WaitAsync(Bound));
            Assert.StartsWith($"model '{linked}' (it resolves to '{fifoModel}') is outside the model roots", error.Message);
        }
        finally
        {
            Directory.Delete(link);
        }

        // A stage grain checks its own setup too: a client that loads one directly gets no further.
        var stage = cluster.Client.GetGrain<IStageGrain>($"outside-{Guid.NewGuid():N}/0/stage-0@a");
        error = await Assert.ThrowsAsync<PathOutsideModelRootsException>(() => stage.Load(new StageSetup(
            "outside", DeploymentToken.New(), 0, fifoModel, 0, 5, IsLast: true, null, "f32", 1 << 20, ["x"], [5])).WaitAsync(Bound));
        Assert.StartsWith($"model '{fifoModel}' is outside the model roots", error.Message);
        Assert.Null(await coordinator.Describe());
    }

    [SharedModelsFact]
    public async Task A_stage_called_directly_without_its_deployments_token_is_refused_and_keeps_serving()
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"direct-{Guid.NewGuid():N}");
        var stages = await coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 2));
        var request = new GenerationRequest([1, 461, 401], MaxTokens: 6, StopTokens: []);
        var before = await coordinator.Generate(request);
        var first = cluster.Client.GetGrain<IStageGrain>(stages[0].GrainKey);
        var last = cluster.Client.GetGrain<IStageGrain>(stages[1].GrainKey);
        var step = new StepRequest(1, [7], [0], [1], Packet: null, Samples: [], ReturnLogits: true);

        var missing = await Assert.ThrowsAsync<StageAccessDeniedException>(() => first.Forward(null!, step));
        Assert.Equal($"stage {stages[0].GrainKey} refused a step without a deployment token: only its deployment's coordinator and stages may call it",
            missing.Message);
        var wrong = DeploymentToken.New();
        var denied = await Assert.ThrowsAsync<StageAccessDeniedException>(() => first.Forward(wrong, step));
        Assert.Equal($"stage {stages[0].GrainKey} refused a step with a token that is not its deployment's: only its deployment's coordinator and stages may call it",
            denied.Message);
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.Deposit(wrong, new byte[64]));
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.Reserve(wrong, [1], [10]));
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.Release(wrong, [1]));
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.ReleaseAll(wrong));
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.Report(wrong));
        await Assert.ThrowsAsync<StageAccessDeniedException>(() => last.Unload(wrong));

        // Nor can a setup with a token of the caller's own take the live stage over.
        var takeover = await Assert.ThrowsAsync<InvalidOperationException>(() => last.Load(new StageSetup(
            "direct", wrong, 1, ModelPath, stages[1].FirstLayer, stages[1].EndLayer, IsLast: true, null, "f32", 1 << 20,
            [.. stages.Select(s => s.GrainKey)], [.. stages.Select(s => s.EndLayer)])));
        Assert.Contains("already loaded with another setup", takeover.Message);

        var after = await coordinator.Generate(request);
        Assert.Equal(before.Ids, after.Ids);
        Assert.Equal(stages.Select(s => s.GrainKey), after.Stages.Select(s => s.GrainKey));
        await coordinator.Unload();
    }

    [SharedModelsFact]
    public async Task A_live_deployment_asked_for_with_other_settings_is_refused_naming_them_and_the_same_settings_find_it()
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"redeploy-{Guid.NewGuid():N}");
        var request = new DeploymentRequest(ModelPath, Stages: 2);
        var stages = await coordinator.Deploy(request);

        Assert.Equal(stages.Select(s => s.GrainKey), (await coordinator.Deploy(request with { })).Select(s => s.GrainKey));
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.Deploy(request with { Wire = "f16", MaxSequences = 8 }));
        Assert.Contains("is live with other settings (wire: f32 → f16; max sequences: 256 → 8)", refused.Message);
        Assert.Equal(stages.Select(s => s.GrainKey), (await coordinator.Stages()).Select(s => s.GrainKey));

        await coordinator.Unload();
        var redeployed = await coordinator.Deploy(request with { Wire = "f16" });
        Assert.Equal(2, redeployed.Length);
        Assert.Equal("f16", (await coordinator.Describe())!.Request.Wire);
        await coordinator.Unload();
    }

    [Fact]
    public async Task A_connection_flood_from_one_address_ends_in_refusals_while_the_silo_serves_with_memory_under_a_bound()
    {
        // Each listener keeps 64 connections from one address (TcpTransportOptions.MaxConnectionsPerAddress); each holds a
        // 512 KiB receive buffer at most while it waits: 32 MiB per listener. The bound leaves room for the runtime's noise.
        const int flood = 300;
        const long memoryBound = 128L << 20;
        var silo = cluster.Nodes["a"];
        long before = ResidentBytes(silo.Ready.ProcessId);
        var sockets = new List<Socket>();
        try
        {
            // From 127.0.0.2, so the test's own client (127.0.0.1) is another address and keeps its place.
            var connecting = Enumerable.Range(0, flood).Select(async _ =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                lock (sockets) sockets.Add(socket);
                socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                try
                {
                    await socket.ConnectAsync(silo.Ready.Silo).WaitAsync(Bound);
                    return await socket.ReceiveAsync(new byte[1], SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10)) == 0;
                }
                catch (SocketException)
                {
                    return true; // reset: refused
                }
                catch (TimeoutException)
                {
                    return false; // still open: admitted
                }
            }).ToArray();
            bool[] refused = await Task.WhenAll(connecting);
            Assert.InRange(refused.Count(r => r), flood - 64, flood);

            // While the admitted ones are still open, the silo serves.
            Assert.Equal(3, (await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(Bound)).Length);
            long grown = ResidentBytes(silo.Ready.ProcessId) - before;
            Assert.True(grown < memoryBound, $"silo a grew by {grown} bytes under the flood, over the bound of {memoryBound}");
        }
        finally
        {
            foreach (var socket in sockets) socket.Dispose();
        }
    }

    /// <summary>The process's resident set (VmRSS in /proc/PID/status), in bytes.</summary>
    private static long ResidentBytes(int processId)
    {
        string line = File.ReadLines($"/proc/{processId}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}
