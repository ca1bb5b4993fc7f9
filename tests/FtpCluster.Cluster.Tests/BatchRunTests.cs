using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Tests;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// <c>ftpcluster run</c> as a user runs it: a separate process starting its own embedded silos, OpenAI batch files in
/// and out, a kill in the middle and a rerun that resumes.
/// </summary>
public sealed class BatchRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly int[] OutOfVocabulary = [1, 9999];

    private static string Aidreams => SharedModels.PathTo("aidreams260K", "aidreams260K.bin");

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static string Line(string customId, string url, object body) =>
        JsonSerializer.Serialize(new { custom_id = customId, method = "POST", url, body });

    /// <summary>Greedy and seeded lines, completions and chat, long enough that a job of them takes a few seconds.</summary>
    private string WriteJob(int lines)
    {
        string[] prompts = ["I dreamed of", "Last night I was flying over", "In my dream, the ocean", "I was in a house", "My teeth were", "The old man"];
        var text = new StringBuilder();
        for (int i = 0; i < lines; i++)
        {
            string prompt = prompts[i % prompts.Length];
            text.AppendLine(i % 3 == 2
                ? Line($"line-{i}", "/v1/chat/completions", new { model = "aidreams260K", messages = new[] { new { role = "user", content = prompt } }, max_tokens = 48, temperature = 0.9, seed = i })
                : Line($"line-{i}", "/v1/completions", new { model = "aidreams260K", prompt, max_tokens = 60, temperature = i % 2 == 0 ? 0 : 0.8, seed = i }));
        }
        string path = PathOf("requests.jsonl");
        File.WriteAllText(path, text.ToString());
        return path;
    }

    /// <summary>Complete lines in a file a run holds open: read without a lock, as the run locks it against other writers.</summary>
    private static int LinesWritten(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Count(c => c == '\n');
    }

    private static JsonElement[] ReadLines(string path) =>
        [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    /// <summary>What must not depend on the run: the answer and its counts (ids and timestamps do).</summary>
    private static string Answer(JsonElement line)
    {
        var body = line.GetProperty("response").GetProperty("body");
        var choice = body.GetProperty("choices")[0];
        string text = choice.TryGetProperty("text", out var t) ? t.GetString()! : choice.GetProperty("message").GetProperty("content").GetString()!;
        var usage = body.GetProperty("usage");
        return $"{text}|{choice.GetProperty("finish_reason").GetString()}|{usage.GetProperty("prompt_tokens")}|{usage.GetProperty("completion_tokens")}";
    }

    [SharedModelsFact]
    public async Task A_killed_job_resumed_writes_each_custom_id_once_and_equals_an_uninterrupted_run()
    {
        const int jobLines = 60;
        string input = WriteJob(jobLines);
        string whole = PathOf("whole.jsonl"), resumed = PathOf("resumed.jsonl");
        var uninterrupted = await CommandLineProcess.RunAsync("run", "--input", input, "--output", whole, "--model", Aidreams, "--max-concurrent", "4");
        Assert.True(uninterrupted.Code == 0, uninterrupted.Err);

        // Killed once a few results are in: its silos see it gone and stop; the lines in flight are lost with them. One
        // line at a time, so that the rest of the job is seconds away when the third result is seen. (18 lines two at a
        // time, and then 30 one at a time, each once finished between the third result and the kill in a loaded CI run.)
        using (var first = CommandLineProcess.Start("run", "--input", input, "--output", resumed, "--model", Aidreams, "--max-concurrent", "1"))
        {
            var deadline = DateTime.UtcNow + CommandLineProcess.Timeout;
            while (!File.Exists(resumed) || LinesWritten(resumed) < 3)
            {
                Assert.True(DateTime.UtcNow < deadline, $"no results within {CommandLineProcess.Timeout}: {first.Stderr}");
                await Task.Delay(20);
            }
            first.KillAbruptly();
            await first.WaitExitAsync();
        }
        int before = File.ReadAllLines(resumed).Length;
        Assert.True(before < jobLines, "the job finished before it could be killed: make it longer");
        // As if the kill had come in the middle of writing a line.
        File.AppendAllText(resumed, "{\"id\": \"batch_req_torn\", \"custom_id\": \"line-1");

        var rerun = await CommandLineProcess.RunAsync("run", "--input", input, "--output", resumed, "--model", Aidreams, "--max-concurrent", "3");
        Assert.True(rerun.Code == 0, rerun.Err);
        Assert.Contains("repaired a torn last line", rerun.Err);
        Assert.Contains($"(+{before} from before)", rerun.Err);

        var expected = ReadLines(whole).ToDictionary(l => l.GetProperty("custom_id").GetString()!, Answer);
        var lines = ReadLines(resumed);
        var ids = lines.Select(l => l.GetProperty("custom_id").GetString()!).ToArray();
        Assert.Equal(ids.Length, ids.Distinct().Count());
        Assert.Equal(expected.Keys.Order(), ids.Order());
        foreach (var line in lines)
            Assert.Equal(expected[line.GetProperty("custom_id").GetString()!], Answer(line));
    }

    [SharedModelsFact]
    public async Task Bad_lines_each_get_an_error_naming_them_and_the_good_lines_still_run()
    {
        string input = PathOf("mixed.jsonl");
        var text = new StringBuilder();
        text.AppendLine(Line("good-1", "/v1/completions", new { model = "aidreams260K", prompt = "I dreamed of", max_tokens = 8 }));
        text.AppendLine("{not json");
        text.AppendLine(Line("good-1", "/v1/completions", new { model = "aidreams260K", prompt = "again", max_tokens = 8 }));
        text.AppendLine(Line("other-model", "/v1/completions", new { model = "gpt-4o", prompt = "hi", max_tokens = 8 }));
        text.AppendLine(Line("too-long", "/v1/completions", new { model = "aidreams260K", prompt = "I dreamed of", max_tokens = 500 }));
        text.AppendLine(Line("bad-id", "/v1/completions", new { model = "aidreams260K", prompt = OutOfVocabulary, max_tokens = 4 }));
        text.AppendLine(Line("bad-url", "/v1/embeddings", new { model = "aidreams260K", input = "hi" }));
        text.AppendLine(Line("good-2", "/v1/chat/completions", new { model = "aidreams260K", messages = new[] { new { role = "user", content = "hello" } }, max_tokens = 8 }));
        File.WriteAllText(input, text.ToString());
        File.AppendAllBytes(input, [.. "{\"custom_id\": \"latin1\", \"x\": \""u8, 0xE9, .. "\"}\n"u8]);

        string output = PathOf("out.jsonl"), errors = PathOf("errors.jsonl");
        var run = await CommandLineProcess.RunAsync("run", "--input", input, "--output", output, "--errors", errors, "--model", Aidreams, "--json");
        Assert.True(run.Code == 0, run.Err);
        var summary = JsonDocument.Parse(run.Out).RootElement;
        Assert.Equal(9, summary.GetProperty("lines").GetInt32());
        Assert.Equal(2, summary.GetProperty("succeeded").GetInt32());
        Assert.Equal(7, summary.GetProperty("failed").GetInt32());

        Assert.Equal(["good-1", "good-2"], ReadLines(output).Select(l => l.GetProperty("custom_id").GetString()).Order());
        var failures = ReadLines(errors).ToDictionary(l => l.GetProperty("error").GetProperty("line").GetInt32(), l => l.GetProperty("error"));
        string Message(int line) => failures[line].GetProperty("message").GetString()!;
        Assert.Contains("line 2: not valid JSON", Message(2));
        Assert.Contains("line 3: 'custom_id' \"good-1\" is already the id of line 1", Message(3));
        Assert.Equal("model_not_found", failures[4].GetProperty("code").GetString());
        Assert.Contains("line 4: the model 'gpt-4o' is not served here: this deployment serves 'aidreams260K'", Message(4));
        Assert.Equal("context_length_exceeded", failures[5].GetProperty("code").GetString());
        Assert.Contains("maximum context length is 128 tokens", Message(5));
        Assert.Contains("'prompt[1]' must be a token id in [0, 512), got 9999", Message(6));
        Assert.Contains("line 7:", Message(7));
        Assert.Contains("/v1/embeddings", Message(7));
        Assert.Contains("line 9: not valid UTF-8", Message(9));
    }
}
