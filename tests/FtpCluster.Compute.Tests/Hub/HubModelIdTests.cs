using FtpCluster.Compute.Hub;
using FtpCluster.Compute.Tests.Models;

namespace FtpCluster.Compute.Tests.Hub;

public sealed class HubModelIdTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB", "SmolLM2-135M-Instruct", "main", null)]
    [InlineData("Qwen/Qwen2.5-0.5B@v1.0", "Qwen", "Qwen2.5-0.5B", "v1.0", null)]
    [InlineData("org/name@refs/pr/1", "org", "name", "refs/pr/1", null)]
    [InlineData("org/name@0123456789abcdef0123456789abcdef01234567", "org", "name", "0123456789abcdef0123456789abcdef01234567", null)]
    [InlineData("TheBloke/TinyLlama-1.1B-GGUF:tinyllama.Q4_K_M.gguf", "TheBloke", "TinyLlama-1.1B-GGUF", "main", "tinyllama.Q4_K_M.gguf")]
    [InlineData("org/name@dev:sub/model.gguf", "org", "name", "dev", "sub/model.gguf")]
    public void Repo_ids_parse_into_their_parts(string text, string owner, string name, string revision, string? file)
    {
        Assert.True(HubModelId.TryParse(text, out var id));
        Assert.Equal(new HubModelId(owner, name, revision, file), id);
        Assert.Equal(text.Replace("@main", "", StringComparison.Ordinal), id.ToString());
    }

    [Theory]
    [InlineData("./org/name")]
    [InlineData("/models/org/name")]
    [InlineData("~/org/name")]
    [InlineData("model.bin")]
    [InlineData("a/b/c")]
    [InlineData("org--x/name")]
    [InlineData("org/na..me")]
    [InlineData("-org/name")]
    [InlineData("org/name.")]
    [InlineData("org/name@")]
    [InlineData("org/name@a..b")]
    [InlineData("org/name:../escape.gguf")]
    [InlineData("org/na me")]
    public void Local_paths_and_malformed_ids_are_not_repo_ids(string text) =>
        Assert.False(HubModelId.TryParse(text, out _));

    [Fact]
    public void A_folder_that_exists_is_a_local_path_even_when_shaped_like_a_repo_id()
    {
        Directory.CreateDirectory(_temp.File("org/name"));
        string previous = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = _temp.Path;
            Assert.False(HubModelId.TryParse("org/name", out _));
            Assert.True(HubModelId.TryParse("org/other", out _));
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    [Fact]
    public void A_snapshot_folder_names_its_repo()
    {
        string snapshot = _temp.File("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/0123456789abcdef0123456789abcdef01234567");

        Assert.Equal("HuggingFaceTB/SmolLM2-135M-Instruct", HubCache.RepoIdOfSnapshot(snapshot));
        Assert.Equal("HuggingFaceTB/SmolLM2-135M-Instruct", HubCache.RepoIdOfSnapshot(snapshot + "/"));
        Assert.Null(HubCache.RepoIdOfSnapshot(Path.Combine(snapshot, "model.gguf")));
        Assert.Null(HubCache.RepoIdOfSnapshot(_temp.File("models/SmolLM2-135M-Instruct")));
        Assert.Null(HubCache.RepoIdOfSnapshot(_temp.File("hub/models--x--y/snapshots/not-a-commit")));
    }

    [Fact]
    public void Settings_follow_huggingface_hub_environment_variables()
    {
        var variables = new Dictionary<string, string>
        {
            ["HF_HOME"] = _temp.File("hf-home"),
            ["HF_ENDPOINT"] = "https://mirror.example/hf/",
            ["HF_TOKEN"] = " hf_abc \n",
            ["HF_HUB_OFFLINE"] = "true",
        };
        var settings = HubSettings.FromVariables(variables.GetValueOrDefault);

        Assert.Equal(Path.Combine(_temp.File("hf-home"), "hub"), settings.CacheRoot);
        Assert.Equal("https://mirror.example/hf", settings.Endpoint.AbsoluteUri.TrimEnd('/'));
        Assert.Equal("hf_abc", settings.Token);
        Assert.True(settings.Offline);

        variables["HF_HUB_CACHE"] = _temp.File("elsewhere");
        variables["HF_HUB_OFFLINE"] = "0";
        variables.Remove("HF_TOKEN");
        File.WriteAllText(Path.Combine(Directory.CreateDirectory(_temp.File("hf-home")).FullName, "token"), "hf_from_login\n");
        settings = HubSettings.FromVariables(variables.GetValueOrDefault);

        Assert.Equal(_temp.File("elsewhere"), settings.CacheRoot);
        Assert.Equal("hf_from_login", settings.Token);
        Assert.False(settings.Offline);
    }

    [Fact]
    public void Without_variables_the_cache_is_under_the_home_folder_and_the_endpoint_is_the_hub()
    {
        var settings = HubSettings.FromVariables(_ => null);

        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub"), settings.CacheRoot);
        Assert.Equal(HubSettings.DefaultEndpoint, settings.Endpoint);
        Assert.False(settings.Offline);
    }

    [Fact]
    public void An_endpoint_that_is_no_http_url_is_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => HubSettings.FromVariables(v => v == "HF_ENDPOINT" ? "huggingface.co" : null));
        Assert.Contains("HF_ENDPOINT 'huggingface.co'", error.Message, StringComparison.Ordinal);
    }
}
