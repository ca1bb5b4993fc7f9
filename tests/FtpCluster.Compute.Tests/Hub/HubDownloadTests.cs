using FtpCluster.Compute.Hub;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Models;

namespace FtpCluster.Compute.Tests.Hub;

/// <summary>
/// Repo ids resolved against <see cref="FakeHub"/> on loopback into a fresh cache: downloads, resumption, checksums,
/// offline mode and the cache's layout. No test reaches the internet.
/// </summary>
public sealed class HubDownloadTests : IDisposable
{
    private const string Weights = HuggingFaceCheckpoint.WeightsFileName;
    private const string Config = HuggingFaceCheckpoint.ConfigFileName;
    private const string GenerationConfig = "generation_config.json";

    private readonly TempDirectory _temp = new();
    private readonly ModelConfig _config;
    private readonly Dictionary<string, byte[]> _files;
    private readonly FakeHub _hub;

    public HubDownloadTests()
    {
        string model = _temp.File("model");
        _config = ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny"), model);
        _files = new()
        {
            [Config] = File.ReadAllBytes(Path.Combine(model, Config)),
            [Weights] = File.ReadAllBytes(Path.Combine(model, Weights)),
            [GenerationConfig] = "{\"bos_token_id\": 1, \"eos_token_id\": 2}"u8.ToArray(),
        };
        _hub = new FakeHub(_files, lfs: [Weights]);
    }

    public void Dispose()
    {
        _hub.Dispose();
        _temp.Dispose();
    }

    private string CacheRoot => _temp.File("cache");

    private string RepoFolder => Path.Combine(CacheRoot, "models--test-org--tiny-model");

    private string Snapshot => Path.Combine(RepoFolder, "snapshots", FakeHub.Commit);

    private string BlobOf(string file) => Path.Combine(RepoFolder, "blobs", _hub.ETagOf(file));

    private HubModelResolver Resolver(bool offline = false, string? token = null, double readTimeoutSeconds = 10) =>
        new(new HubSettings(CacheRoot, _hub.Endpoint, token, offline, TimeSpan.FromSeconds(readTimeoutSeconds)));

    private static HubModelId Id(string text) =>
        HubModelId.TryParse(text, out var id) ? id : throw new ArgumentException($"not a repo id: {text}");

    private Task<string> ResolveAsync(HubModelResolver? resolver = null, string id = FakeHub.RepoId, IProgress<(string, long, long)>? progress = null) =>
        (resolver ?? Resolver()).ResolveAsync(Id(id), progress);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_fresh_download_opens_as_a_checkpoint_and_a_second_resolve_makes_no_request(bool absoluteRedirects)
    {
        _hub.AbsoluteRedirects = absoluteRedirects;
        var reports = new List<(string File, long Done, long Total)>();

        string path = await ResolveAsync(progress: new SynchronousProgress<(string, long, long)>(reports.Add));

        Assert.Equal(Snapshot, path);
        using (var checkpoint = Checkpoint.Open(path))
            Assert.Equal(_config, checkpoint.Config);
        Assert.Equal(_files[GenerationConfig], File.ReadAllBytes(Path.Combine(path, GenerationConfig)));
        Assert.False(File.Exists(Path.Combine(path, "tokenizer.json")));
        Assert.Contains(_hub.Requests, r => r.Method == "GET" && r.Path == "/cdn/" + Weights);
        Assert.Equal((Weights, _files[Weights].Length, _files[Weights].Length), reports.Last(r => r.File == Weights));

        _hub.ClearRequests();
        Assert.Equal(path, await ResolveAsync());
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task The_cache_is_laid_out_as_huggingface_hub_lays_it_out()
    {
        await ResolveAsync();

        Assert.Equal(FakeHub.Commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));
        foreach (string file in new[] { Config, Weights, GenerationConfig })
        {
            var link = new FileInfo(Path.Combine(Snapshot, file));
            Assert.Equal($"../../blobs/{_hub.ETagOf(file)}", link.LinkTarget);
            Assert.Equal(_files[file], File.ReadAllBytes(BlobOf(file)));
        }
        // An LFS file's blob is named by its sha256, a small file's by its git blob sha1.
        Assert.Equal(FakeHub.Sha256(_files[Weights]), Path.GetFileName(BlobOf(Weights)));
        Assert.Equal(FakeHub.GitBlobSha1(_files[Config]), Path.GetFileName(BlobOf(Config)));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
    }

    [PythonHuggingFaceHubFact]
    public async Task Python_huggingface_hub_finds_the_downloaded_files_offline()
    {
        await ResolveAsync();

        var python = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3",
            ["-c", "import sys; from huggingface_hub import hf_hub_download; "
                + "print(hf_hub_download(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3], local_files_only=True))",
                FakeHub.RepoId, Weights, CacheRoot])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        string output = await python.StandardOutput.ReadToEndAsync();
        string errors = await python.StandardError.ReadToEndAsync();
        await python.WaitForExitAsync();

        Assert.True(python.ExitCode == 0, errors);
        Assert.Equal(Path.Combine(Snapshot, Weights), output.Trim());
    }

    [Fact]
    public async Task A_download_cut_off_half_way_resumes_with_a_range_request()
    {
        int half = _files[Weights].Length / 2;
        _hub.CutNextAfter(Weights, half);

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync());
        Assert.Contains(Weights, error.Message, StringComparison.Ordinal);
        Assert.Contains("resume", error.Message, StringComparison.Ordinal);
        Assert.Equal(half, new FileInfo(BlobOf(Weights) + ".incomplete").Length);
        Assert.False(File.Exists(Path.Combine(Snapshot, Weights)));

        _hub.ClearRequests();
        string path = await ResolveAsync();

        Assert.Contains(_hub.Requests, r => r.Path == "/cdn/" + Weights && r.Range == $"bytes={half}-");
        Assert.Equal(_files[Weights], File.ReadAllBytes(Path.Combine(path, Weights)));
        Assert.False(File.Exists(BlobOf(Weights) + ".incomplete"));
        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(_config, checkpoint.Config);
    }

    [Fact]
    public async Task A_server_that_ignores_the_range_gets_the_whole_file_written_again()
    {
        _hub.CutNextAfter(Weights, _files[Weights].Length / 3);
        await Assert.ThrowsAsync<HubException>(() => ResolveAsync());
        _hub.IgnoreRange = true;

        string path = await ResolveAsync();

        Assert.Equal(_files[Weights], File.ReadAllBytes(Path.Combine(path, Weights)));
    }

    [Fact]
    public async Task Wrong_bytes_fail_the_checksum_and_leave_no_blob()
    {
        _hub.Corrupt(Weights);
        byte[] corrupted = [.. _files[Weights]];
        corrupted[corrupted.Length / 2] ^= 0xff;

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync());

        Assert.Contains(Weights, error.Message, StringComparison.Ordinal);
        Assert.Contains($"expected sha256 {FakeHub.Sha256(_files[Weights])}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"got {FakeHub.Sha256(corrupted)}", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(BlobOf(Weights)));
        Assert.False(File.Exists(BlobOf(Weights) + ".incomplete"));
        Assert.False(File.Exists(Path.Combine(Snapshot, Weights)));
    }

    [Fact]
    public async Task A_stalled_connection_gives_up_after_the_read_timeout()
    {
        _hub.StallNextAfter(Weights, 1000);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync(Resolver(readTimeoutSeconds: 1)));

        Assert.Contains("stalled", error.Message, StringComparison.Ordinal);
        Assert.Contains(Weights, error.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 8);
        Assert.Equal(1000, new FileInfo(BlobOf(Weights) + ".incomplete").Length);
    }

    [Fact]
    public async Task Offline_with_nothing_cached_names_the_repo_the_files_the_folder_and_the_way_out()
    {
        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync(Resolver(offline: true)));

        foreach (string part in new[] { "HF_HUB_OFFLINE", FakeHub.RepoId, Config, Weights, RepoFolder, "--model" })
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task A_hub_that_cannot_be_reached_says_how_to_run_from_a_local_checkpoint()
    {
        // A loopback port nothing listens on: the connection is refused, as on a machine without network access.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var resolver = new HubModelResolver(new HubSettings(CacheRoot, new Uri($"http://127.0.0.1:{port}"), null, false, TimeSpan.FromSeconds(10)));

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync(resolver));

        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("pass a local checkpoint with --model PATH", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_with_a_file_missing_from_the_snapshot_names_that_file()
    {
        await ResolveAsync();
        File.Delete(Path.Combine(Snapshot, Weights));
        _hub.ClearRequests();

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync(Resolver(offline: true)));

        Assert.Contains(Weights, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Config + ",", error.Message, StringComparison.Ordinal);
        Assert.Contains(RepoFolder, error.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task Offline_with_everything_cached_resolves_without_a_request()
    {
        await ResolveAsync();
        _hub.ClearRequests();

        string path = await ResolveAsync(Resolver(offline: true));

        Assert.Equal(Snapshot, path);
        Assert.Empty(_hub.Requests);
        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(_config, checkpoint.Config);
    }

    [Fact]
    public async Task A_sharded_checkpoint_brings_its_index_and_every_shard()
    {
        string model = _temp.File("sharded");
        var config = ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { MaxShardBytes = 40_000 }, model);
        var files = Directory.GetFiles(model).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        string[] shards = [.. files.Keys.Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal))];
        Assert.True(shards.Length > 1);
        using var hub = new FakeHub(files, lfs: shards);
        var resolver = new HubModelResolver(new HubSettings(CacheRoot, hub.Endpoint, null, false, TimeSpan.FromSeconds(10)));

        string path = await resolver.ResolveAsync(Id(FakeHub.RepoId));

        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(config, checkpoint.Config);
        Assert.All(shards, shard => Assert.Equal(files[shard], File.ReadAllBytes(Path.Combine(path, shard))));
    }

    [Fact]
    public async Task Two_resolves_at_once_share_the_cache_without_tearing_a_blob()
    {
        string[] paths = await Task.WhenAll(ResolveAsync(), ResolveAsync(), ResolveAsync());

        Assert.All(paths, path => Assert.Equal(Snapshot, path));
        Assert.Equal(_files[Weights], File.ReadAllBytes(Path.Combine(Snapshot, Weights)));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task A_commit_revision_is_fetched_at_that_commit_and_writes_no_ref()
    {
        string path = await ResolveAsync(id: $"{FakeHub.RepoId}@{FakeHub.Commit}");

        Assert.Equal(Snapshot, path);
        Assert.False(Directory.Exists(Path.Combine(RepoFolder, "refs")));
        Assert.All(_hub.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)),
            r => Assert.Contains($"/resolve/{FakeHub.Commit}/", r.Path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_named_file_is_fetched_alone()
    {
        string path = await ResolveAsync(id: $"{FakeHub.RepoId}:{Weights}");

        Assert.Equal(Path.Combine(Snapshot, Weights), path);
        Assert.Equal(_files[Weights], File.ReadAllBytes(path));
        Assert.All(_hub.Requests, r => Assert.Contains(Weights, r.Path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repository_the_hub_does_not_show_fails_with_a_hint_about_the_token()
    {
        _hub.Unauthorized = true;

        var error = await Assert.ThrowsAsync<HubException>(() => ResolveAsync());

        foreach (string part in new[] { Config, FakeHub.RepoId, "401", "Repository not found", "HF_TOKEN" })
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_token_goes_with_requests_to_the_endpoint()
    {
        await ResolveAsync(Resolver(token: "hf_secret"));

        Assert.All(_hub.Requests, r => Assert.Equal("Bearer hf_secret", r.Authorization));
    }

    [Fact]
    public async Task A_network_failure_names_the_file_and_the_url()
    {
        var closed = new Uri($"http://127.0.0.1:{UnusedPort()}/");
        var resolver = new HubModelResolver(new HubSettings(CacheRoot, closed, null, false, TimeSpan.FromSeconds(5)));

        var error = await Assert.ThrowsAsync<HubException>(() => resolver.ResolveAsync(Id(FakeHub.RepoId)));

        Assert.Contains($"{Config} of {FakeHub.RepoId}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"{closed.AbsoluteUri}{FakeHub.RepoId}/resolve/main/{Config}", error.Message, StringComparison.Ordinal);
    }

    private static int UnusedPort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
    }
}

/// <summary>Calls back on the reporting thread, in order (<see cref="Progress{T}"/> posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>A test that needs python3 with huggingface_hub installed; skipped where it is not.</summary>
public sealed class PythonHuggingFaceHubFactAttribute : FactAttribute
{
    private static readonly Lazy<bool> Available = new(() =>
    {
        try
        {
            using var python = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3", ["-c", "import huggingface_hub"])
            {
                RedirectStandardError = true,
            })!;
            python.StandardError.ReadToEnd();
            python.WaitForExit();
            return python.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    });

    public PythonHuggingFaceHubFactAttribute()
    {
        if (!Available.Value)
            Skip = "python3 with huggingface_hub is not installed";
    }
}
