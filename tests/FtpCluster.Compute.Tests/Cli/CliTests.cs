using System.Diagnostics;
using System.Text.Json;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary>The ftpcluster command line as a user runs it: a separate process, its output and exit code.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ftpcluster.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"ftpcluster {string.Join(' ', args)} did not finish");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [SharedModelsFact]
    public void Generate_json_reproduces_the_golden_greedy_ids_and_text()
    {
        var golden = SharedModels.Golden.GetProperty("aidreams260K");
        var expectedIds = golden.GetProperty("greedy_60_steps_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int promptLength = golden.GetProperty("prompt_ids").GetArrayLength();
        var (code, stdout, stderr) = Run("generate", "--model", SharedModels.PathTo("aidreams260K", "aidreams260K.bin"),
            "--prompt", golden.GetProperty("prompt").GetString()!, "--max-tokens", (expectedIds.Length - promptLength).ToString(), "--json");
        Assert.True(code == 0, stderr);
        Assert.Contains("device: cpu", stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(golden.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()), json.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(expectedIds, json.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(golden.GetProperty("greedy_60_steps_text").GetString(), json.GetProperty("text").GetString());
    }

    [Fact]
    public void Devices_lists_every_device_with_the_budget_and_the_capacity_a_silo_on_it_would_take()
    {
        var (code, stdout, stderr) = Run("devices", "--measure", "--json");
        Assert.True(code == 0, stderr);
        var devices = JsonDocument.Parse(stdout).RootElement.GetProperty("devices").EnumerateArray().ToArray();
        string[] expected = ["cpu", "ilgpu-cpu", .. Enumerable.Range(0, IlgpuDevice.CudaDeviceCount()).Select(i => $"cuda:{i}")];
        Assert.Equal(expected, devices.Select(d => d.GetProperty("device").GetString()));
        Assert.StartsWith("cpu: ", devices[0].GetProperty("description").GetString());
        Assert.StartsWith("ilgpu cpu accelerator", devices[1].GetProperty("description").GetString());
        // Neither is a GPU, so a silo on either takes the host's default budget.
        long hostBudgetMb = FtpClusterSiloOptions.DefaultMemoryBudgetBytes() / (1024 * 1024);
        Assert.All(devices[..2], d => Assert.Equal(hostBudgetMb, d.GetProperty("memory_budget_mb").GetInt64()));
        // The SIMD path beats ILGPU's emulation of a GPU by far, so the planner would give a cpu silo the larger share.
        double cpu = devices[0].GetProperty("capacity_gflops").GetDouble(), emulated = devices[1].GetProperty("capacity_gflops").GetDouble();
        Assert.True(emulated > 0 && cpu > 10 * emulated, $"cpu {cpu} GFLOP/s, ilgpu-cpu {emulated}");

        (code, stdout, stderr) = Run("devices");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("host: ", lines[0]);
        Assert.Equal(expected, lines[1..].Select(line => line.Split(' ')[0]));
        Assert.All(lines[1..3], line => Assert.Contains($"memory budget {hostBudgetMb:N0} MiB", line));
        Assert.DoesNotContain("capacity", stdout);
    }

    [SharedModelsFact]
    public void Score_returns_logits_and_log_probabilities()
    {
        var golden = SharedModels.Golden.GetProperty("stories260K");
        string ids = golden.GetProperty("logits_ids").GetRawText();
        var (code, stdout, stderr) = Run("score", "--model", SharedModels.PathTo("stories260K", "stories260K.bin"), "--ids", ids, "--logits", "--json");
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        var logits = json.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
        var expected = golden.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
        Assert.Equal(expected.Length, logits.Length);
        for (int t = 0; t < expected.Length; t++)
        {
            double diff = expected[t].Zip(logits[t], (a, b) => (a - b) * (a - b)).Sum(), norm = expected[t].Sum(a => a * a);
            Assert.True(Math.Sqrt(diff / norm) < 1e-4, $"position {t}");
        }
        // logprob[i] is log softmax(logits[i])[ids[i + 1]]
        var idArray = golden.GetProperty("logits_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var logprobs = json.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(idArray.Length - 1, logprobs.Length);
        for (int i = 0; i < logprobs.Length; i++)
        {
            double max = logits[i].Max();
            double expectedLogprob = logits[i][idArray[i + 1]] - max - Math.Log(logits[i].Sum(l => Math.Exp(l - max)));
            Assert.Equal(expectedLogprob, logprobs[i], 4);
        }
    }

    [Fact]
    public void Models_synth_then_info_describe_the_model_written()
    {
        var (code, _, stderr) = Run("models", "synth", "--preset", "tiny", "--layers", "3", "--dtype", "bf16", "--out", _dir);
        Assert.True(code == 0, stderr);
        (code, var stdout, stderr) = Run("models", "info", _dir, "--json");
        Assert.True(code == 0, stderr);
        var info = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, info.GetProperty("layers").GetInt32());
        Assert.Equal("LlamaForCausalLM", info.GetProperty("architecture").GetString());
        Assert.Equal(["BF16"], info.GetProperty("d_types").EnumerateArray().Select(e => e.GetString()));

        (code, stdout, stderr) = Run("generate", "--model", _dir, "--ids", "[1,2,3]", "--max-tokens", "5", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(8, JsonDocument.Parse(stdout).RootElement.GetProperty("ids").GetArrayLength());
    }

    [Fact]
    public void Bench_wire_measures_every_encoding_at_both_packet_sizes()
    {
        var (code, stdout, stderr) = Run("bench", "wire", "--hidden", "64", "--seconds", "0.01", "--json");
        Assert.True(code == 0, stderr);
        var results = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToArray();
        Assert.Equal(10, results.Length);
        Assert.Equal(["bf16", "f16", "f32", "int8", "int8-row"],
            results.Select(r => r.GetProperty("encoding").GetString()).Distinct().Order(StringComparer.Ordinal));
        Assert.All(results, r => Assert.True(r.GetProperty("encode_gb_per_second").GetDouble() > 0));
    }

    [SharedModelsFact]
    public void Bench_detokenize_times_both_ways_on_the_same_answer()
    {
        var (code, stdout, stderr) = Run("bench", "detokenize", "--tokenizer", SharedModels.PathTo("aidreams260K", "tok512.bin"), "--tokens", "300", "--reps", "1", "--json");
        Assert.True(code == 0, stderr);
        var result = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(300, result.GetProperty("tokens").GetInt32());
        Assert.True(result.GetProperty("whole_decode_ms_per_answer").GetDouble() > 0);
        Assert.True(result.GetProperty("incremental_ms_per_answer").GetDouble() > 0);

        (code, _, stderr) = Run("bench", "detokenize", "--tokens", "300");
        Assert.Equal(2, code);
        Assert.Contains("needs --tokenizer PATH", stderr);

        (code, _, stderr) = Run("bench", "detokenize", "--tokenizer", SharedModels.PathTo("aidreams260K", "tok512.bin"), "--tokens", "0");
        Assert.Equal(2, code);
        Assert.Contains("--tokens must be at least 1, got 0", stderr);

        (code, _, stderr) = Run("bench", "detokenize", "--tokenizer", SharedModels.PathTo("aidreams260K", "tok512.bin"), "--reps", "0");
        Assert.Equal(2, code);
        Assert.Contains("--reps must be at least 1, got 0", stderr);

        (code, _, stderr) = Run("bench", "detokenize", "--tokenizer", "/nonexistent/tokenizer.json");
        Assert.NotEqual(0, code);
        Assert.Contains("/nonexistent/tokenizer.json", stderr);
    }

    [Fact]
    public void Bad_arguments_get_one_clear_line_and_exit_code_2()
    {
        var (code, _, stderr) = Run("generate", "--model", _dir, "--ids", "[1]", "--max-tokenz", "5");
        Assert.Equal(2, code);
        Assert.Contains("unknown option: --max-tokenz", stderr);

        (code, _, stderr) = Run("generate", "--model", _dir, "--ids", "[1]", "--temperature", "warm");
        Assert.Equal(2, code);
        Assert.Contains("--temperature expects a number, got 'warm'", stderr);

        (code, _, stderr) = Run("bench", "model");
        Assert.Equal(2, code);
        Assert.Contains("--model is required", stderr);
    }

    [Fact]
    public void Bench_model_times_decode_of_sequences_together_when_asked()
    {
        Run("models", "synth", "--preset", "tiny", "--out", _dir);
        string[] bench = ["bench", "model", "--model", _dir, "--prompt-tokens", "4", "--gen-tokens", "3", "--reps", "1", "--json"];
        var (code, stdout, stderr) = Run([.. bench, "--sequences", "3"]);
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, json.GetProperty("sequences").GetInt32());
        Assert.True(json.GetProperty("decode_together_tokens_per_second").GetDouble() > 0);

        (code, stdout, stderr) = Run(bench);
        Assert.True(code == 0, stderr);
        json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(1, json.GetProperty("sequences").GetInt32());
        Assert.False(json.TryGetProperty("decode_together_tokens_per_second", out _));

        (code, _, stderr) = Run([.. bench, "--sequences", "0"]);
        Assert.Equal(2, code);
        Assert.Contains("--sequences needs at least 1 sequence, got 0", stderr);
    }

    [Fact]
    public void Bench_model_profile_is_refused_without_an_ilgpu_device_or_a_token()
    {
        Run("models", "synth", "--preset", "tiny", "--out", _dir);
        var (code, _, stderr) = Run("bench", "model", "--model", _dir, "--profile", "4");
        Assert.Equal(2, code);
        Assert.Contains("--profile times the operations of an ILGPU device: add --device ilgpu-cpu or --device cuda", stderr);

        (code, _, stderr) = Run("bench", "model", "--model", _dir, "--device", "ilgpu-cpu", "--profile", "0");
        Assert.Equal(2, code);
        Assert.Contains("--profile needs at least 1 token, got 0", stderr);
    }

    [Fact]
    public void A_missing_model_or_device_is_reported_by_name()
    {
        string missing = Path.Combine(_dir, "nope.bin");
        var (code, _, stderr) = Run("generate", "--model", missing, "--ids", "[1]");
        Assert.Equal(1, code);
        Assert.Contains(missing, stderr);

        Run("models", "synth", "--preset", "tiny", "--out", _dir);
        (code, _, stderr) = Run("generate", "--model", _dir, "--ids", "[1, 500]");
        Assert.Equal(2, code);
        Assert.Contains("--ids[1] = 500 is outside the vocabulary [0, 128)", stderr);

        (code, _, stderr) = Run("generate", "--model", _dir, "--ids", "[1]", "--device", "tpu");
        Assert.Equal(1, code);
        Assert.Contains("unknown device 'tpu'", stderr);
    }
}
