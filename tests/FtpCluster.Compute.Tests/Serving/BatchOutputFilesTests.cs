using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Serving;
using static FtpCluster.Compute.Tests.Serving.Bodies;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class BatchOutputFilesTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ftpcluster-batch-out-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    private static BatchOutputLine Answer(string customId)
    {
        var request = PreparedRequest.Prepare(Parse("""{"model": "tiny", "prompt": "x"}"""), new ServedModel("tiny", [], 64, 1000, []), new CharPromptEncoder());
        var outcome = new CompletionOutcome(2, [.. "ok".Select(c => (int)c)], FinishReasons.Stop, null, FtpUsage.None);
        return BatchOutputLine.Success(customId, CompletionResponse.Create(request, outcome, CharPromptEncoder.Decode, CharPromptEncoder.TokenBytes));
    }

    private static BatchOutputLine Failed(int line, string? customId) => BatchOutputLine.Failure(line, customId, ErrorCodes.InvalidValue, $"requests.jsonl line {line}: bad");

    /// <summary>Every line of the file, each checked to be a whole JSON object.</summary>
    private static List<JsonElement> Lines(string path)
    {
        string text = File.ReadAllText(path);
        Assert.EndsWith("\n", text);
        return [.. text[..^1].Split('\n').Select(line => JsonDocument.Parse(line).RootElement)];
    }

    [Fact]
    public void Lines_are_appended_and_found_done_when_the_files_are_opened_again()
    {
        string output = PathOf("out.jsonl");
        using (var files = BatchOutputFiles.Open(output))
        {
            Assert.Empty(files.Repairs);
            Assert.Equal(0, files.DoneCount);
            files.Append(Answer("a"));
            files.Append(Failed(2, "b"));
            files.Append(Failed(3, null));
            Assert.True(files.IsDone("a"));
            Assert.True(files.IsDone("b"));
            Assert.True(files.IsDone(3));
            Assert.False(files.IsDone(2));
        }
        // Failures go into the output when there is no errors file, as vLLM writes them.
        Assert.Equal(["a", "b", null], Lines(output).Select(l => l.GetProperty("custom_id").GetString()));

        using (var files = BatchOutputFiles.Open(output))
        {
            Assert.Empty(files.Repairs);
            Assert.Equal(3, files.DoneCount);
            Assert.True(files.IsDone("a"));
            Assert.True(files.IsDone("b"));
            Assert.True(files.IsDone(3));
            Assert.False(files.IsDone("c"));
            Assert.False(files.IsDone(1));
            files.Append(Answer("c"));
        }
        Assert.Equal(4, Lines(output).Count);
    }

    [Fact]
    public void With_an_errors_file_failures_go_there_and_both_files_are_resumed()
    {
        string output = PathOf("out.jsonl"), errors = PathOf("errors.jsonl");
        using (var files = BatchOutputFiles.Open(output, errors))
        {
            files.Append(Answer("a"));
            files.Append(Failed(5, null));
            files.Append(Failed(6, "f"));
        }
        Assert.Equal(["a"], Lines(output).Select(l => l.GetProperty("custom_id").GetString()));
        Assert.Equal([5, 6], Lines(errors).Select(l => l.GetProperty("error").GetProperty("line").GetInt32()));

        using var reopened = BatchOutputFiles.Open(output, errors);
        Assert.True(reopened.IsDone("a"));
        Assert.True(reopened.IsDone(5));
        Assert.True(reopened.IsDone("f"));
        Assert.Equal(3, reopened.DoneCount);
    }

    [Fact]
    public void A_torn_last_line_is_cut_off_and_reported()
    {
        string output = PathOf("out.jsonl");
        using (var files = BatchOutputFiles.Open(output)) files.Append(Answer("a"));
        long complete = new FileInfo(output).Length;
        byte[] torn = Encoding.UTF8.GetBytes("""{"id":"batch_req_1","custom_id":"b","respo""");
        using (var file = new FileStream(output, FileMode.Append)) file.Write(torn);

        using (var files = BatchOutputFiles.Open(output))
        {
            var repair = Assert.Single(files.Repairs);
            Assert.Equal(torn.Length, repair.BytesCut);
            Assert.Equal($"{output}: repaired a torn last line ({torn.Length} bytes)", repair.ToString());
            Assert.Equal(complete, new FileInfo(output).Length);
            Assert.True(files.IsDone("a"));
            Assert.False(files.IsDone("b"));
            files.Append(Answer("b"));
        }
        Assert.Equal(["a", "b"], Lines(output).Select(l => l.GetProperty("custom_id").GetString()));
    }

    [Fact]
    public void A_whole_last_line_without_its_newline_is_cut_too()
    {
        string output = PathOf("out.jsonl");
        using (var files = BatchOutputFiles.Open(output)) files.Append(Answer("a"));
        byte[] whole = Answer("b").Json.ToArray();
        using (var file = new FileStream(output, FileMode.Append)) file.Write(whole);

        using var reopened = BatchOutputFiles.Open(output);
        Assert.Equal(whole.Length, Assert.Single(reopened.Repairs).BytesCut);
        Assert.False(reopened.IsDone("b"));
    }

    [Fact]
    public void A_last_line_that_is_not_JSON_is_torn_even_with_a_newline()
    {
        string errors = PathOf("errors.jsonl");
        const string torn = "{\"custom_id\":\"x\",\n";
        File.WriteAllText(errors, "{\"custom_id\":null,\"error\":{\"line\":4}}\n" + torn);
        using var files = BatchOutputFiles.Open(PathOf("out.jsonl"), errors);
        var repair = Assert.Single(files.Repairs);
        Assert.Equal(errors, repair.Path);
        Assert.Equal(torn.Length, repair.BytesCut);
        Assert.True(files.IsDone(4));
        Assert.False(files.IsDone("x"));
    }

    [Theory]
    [InlineData("{\"custom_id\":\"b\",\n", "not JSON: ")]
    [InlineData("[1, 2]\n", "a JSON array, not an object")]
    [InlineData("{\"answer\": 42}\n", "neither a string 'custom_id' nor an 'error.line'")]
    public void A_bad_line_in_the_middle_is_refused_and_the_file_left_alone(string middle, string problem)
    {
        string output = PathOf("out.jsonl");
        string text = "{\"custom_id\":\"a\"}\n" + middle + "{\"custom_id\":\"c\"}\n";
        File.WriteAllText(output, text);
        var error = Assert.Throws<InvalidDataException>(() => BatchOutputFiles.Open(output));
        Assert.StartsWith($"{output} line 2: not a batch output line ({problem}", error.Message);
        Assert.EndsWith("the file is not one a batch run wrote, or it is corrupt, so nothing is appended to it", error.Message);
        Assert.Equal(text, File.ReadAllText(output));
    }

    [Fact]
    public void A_last_line_that_is_whole_JSON_but_not_an_output_line_is_refused_not_cut()
    {
        string output = PathOf("out.jsonl");
        File.WriteAllText(output, "{\"custom_id\":\"a\"}\n{\"answer\": 42}\n");
        var error = Assert.Throws<InvalidDataException>(() => BatchOutputFiles.Open(output));
        Assert.StartsWith($"{output} line 2: not a batch output line (neither a string 'custom_id' nor an 'error.line')", error.Message);
    }

    [Fact]
    public void A_bad_errors_file_releases_the_output_file()
    {
        string output = PathOf("out.jsonl"), errors = PathOf("errors.jsonl");
        File.WriteAllText(errors, "garbage\n{\"custom_id\":\"c\"}\n");
        Assert.Throws<InvalidDataException>(() => BatchOutputFiles.Open(output, errors));
        using var files = BatchOutputFiles.Open(output);
        Assert.Equal(0, files.DoneCount);
    }

    [Fact]
    public void Blank_lines_are_passed_over()
    {
        string output = PathOf("out.jsonl");
        File.WriteAllText(output, "{\"custom_id\":\"a\"}\n\n{\"custom_id\":\"b\"}\n\n");
        using var files = BatchOutputFiles.Open(output);
        Assert.Empty(files.Repairs);
        Assert.Equal(2, files.DoneCount);
    }

    [Fact]
    public void The_errors_file_cannot_be_the_output_file()
    {
        string output = PathOf("out.jsonl");
        var error = Assert.Throws<ArgumentException>(() => BatchOutputFiles.Open(output, Path.Combine(_folder, ".", "out.jsonl")));
        Assert.StartsWith($"the errors file {Path.Combine(_folder, ".", "out.jsonl")} is the output file", error.Message);
    }

    [Fact]
    public void Lines_appended_from_many_threads_stay_whole()
    {
        string output = PathOf("out.jsonl");
        using (var files = BatchOutputFiles.Open(output))
            Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
                files.Append(i % 5 == 0 ? Failed(i + 1, null) : Answer($"r{i}")));
        var lines = Lines(output);
        Assert.Equal(400, lines.Count);
        using var reopened = BatchOutputFiles.Open(output);
        Assert.Equal(400, reopened.DoneCount);
        Assert.True(reopened.IsDone("r399"));
        Assert.True(reopened.IsDone(396));
    }
}
