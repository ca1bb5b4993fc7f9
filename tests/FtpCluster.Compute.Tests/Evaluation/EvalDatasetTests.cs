using System.Text.Json;
using FtpCluster.Compute.Evaluation;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class EvalDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-eval-data-").FullName;
    private readonly FakeTokenizer _tokenizer = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string IdsLine(int count, int first = 10) => JsonSerializer.Serialize(new { ids = Enumerable.Range(first, count).ToArray() });

    [Fact]
    public void Json_lines_give_one_sequence_per_line_from_ids_or_text()
    {
        string path = Write("data.jsonl",
            IdsLine(12),
            "",
            """{"text": "a dream of the sea"}""",
            """{"ids": [1, 20, 21, 22, 23, 24, 25, 26, 27, 28], "text": "ignored: the ids are exact"}""");
        var data = EvalDataset.Load(path, _tokenizer, vocabSize: 300, contextLength: 128);
        Assert.Empty(data.Problems);
        Assert.Equal(3, data.Sequences.Count);
        Assert.Equal(Enumerable.Range(10, 12), data.Sequences[0].Ids);
        Assert.Equal(_tokenizer.Encode("a dream of the sea", addBos: true), data.Sequences[1].Ids);
        Assert.Equal([1, 20, 21, 22, 23, 24, 25, 26, 27, 28], data.Sequences[2].Ids);
        Assert.Equal($"{path}:3", data.Sequences[1].Origin);
        Assert.Equal($"{path}:4", data.Sequences[2].Origin);
    }

    [Fact]
    public void Each_bad_line_is_reported_with_file_and_line_and_the_rest_still_load()
    {
        string path = Write("bad.jsonl",
            IdsLine(10),
            "{not json",
            """{"tokens": [1, 2, 3]}""",
            """{"ids": [1, 2, 900, 4, 5, 6, 7, 8, 9, 10]}""",
            """{"ids": [1, 2, "three", 4, 5, 6, 7, 8, 9, 10]}""",
            """{"ids": []}""",
            """{"text": 42}""",
            "[1, 2, 3]",
            IdsLine(4),
            IdsLine(10, first: 50));
        var data = EvalDataset.Load(path, _tokenizer, vocabSize: 300, contextLength: 128);
        Assert.Equal(2, data.Sequences.Count);
        Assert.Equal(1, data.TooShort);
        string[] expected =
        [
            $"{path}:2: not valid JSON",
            $"{path}:3: expected \"ids\" (an array of token ids) or \"text\" (a string), found neither",
            $"{path}:4: ids[2] = 900 is outside the vocabulary [0, 300)",
            $"{path}:5: ids[2] is not an integer: \"three\"",
            $"{path}:6: \"ids\" is empty",
            $"{path}:7: \"text\" must be a string, got a number",
            $"{path}:8: expected a JSON object with \"ids\" (an array of token ids) or \"text\" (a string), got an array",
        ];
        Assert.Equal(expected.Length, data.Problems.Count);
        for (int i = 0; i < expected.Length; i++) Assert.StartsWith(expected[i], data.Problems[i].ToString());
    }

    [Fact]
    public void Text_lines_without_a_tokenizer_are_problems_while_id_lines_still_load()
    {
        string path = Write("mixed.jsonl", IdsLine(10), """{"text": "no way to encode this"}""");
        var data = EvalDataset.Load(path, tokenizer: null, vocabSize: 300, contextLength: 128);
        Assert.Single(data.Sequences);
        Assert.Equal($"{path}:2: \"text\" needs a tokenizer to become token ids, and none was given", Assert.Single(data.Problems).ToString());
    }

    [Fact]
    public void Plain_text_is_cut_into_documents_at_blank_lines_each_starting_with_bos()
    {
        string path = Write("stories.txt",
            "Once upon a time there was a cat.",
            "It slept all day.",
            "",
            "   ",
            "",
            "A second story about a dog.",
            "",
            "tiny");
        var data = EvalDataset.Load(path, _tokenizer, vocabSize: 300, contextLength: 128);
        Assert.Equal(2, data.Sequences.Count);
        Assert.Equal(_tokenizer.Encode("Once upon a time there was a cat.\nIt slept all day.", addBos: true), data.Sequences[0].Ids);
        Assert.Equal($"{path}:1", data.Sequences[0].Origin);
        Assert.Equal($"{path}:6", data.Sequences[1].Origin);
        Assert.Equal(1, data.TooShort);     // "tiny" is BOS + 4 tokens
    }

    [Fact]
    public void Plain_text_without_a_tokenizer_is_an_error_naming_the_file()
    {
        string path = Write("stories.txt", "Once upon a time.");
        var e = Assert.Throws<InvalidDataException>(() => EvalDataset.Load(path, tokenizer: null, vocabSize: 300, contextLength: 128));
        Assert.Contains(path, e.Message);
        Assert.Contains("needs a tokenizer", e.Message);
    }

    [Fact]
    public void A_file_whose_first_line_is_an_object_is_read_as_json_lines_whatever_its_name()
    {
        string path = Write("samples.txt", "", IdsLine(10));
        var data = EvalDataset.Load(path, tokenizer: null, vocabSize: 300, contextLength: 128);
        Assert.Equal(Enumerable.Range(10, 10), Assert.Single(data.Sequences).Ids);
    }

    [Fact]
    public void Long_sequences_are_cut_at_the_maximum_length_and_a_short_tail_is_dropped()
    {
        string path = Write("long.jsonl", IdsLine(300), IdsLine(20, first: 100));
        var data = EvalDataset.Load(path, null, vocabSize: 400, contextLength: 128);
        Assert.Equal([128, 128, 44, 20], data.Sequences.Select(s => s.Ids.Length));
        Assert.Equal(Enumerable.Range(10 + 128, 128), data.Sequences[1].Ids);
        Assert.Equal($"{path}:1 (tokens 128..256)", data.Sequences[1].Origin);
        Assert.Equal(1, data.Cut);

        // A smaller maximum than the model's context; 300 = 3 · 96 + 12, and the tail of 12 is kept.
        data = EvalDataset.Load(path, null, vocabSize: 400, contextLength: 128, new EvalDataOptions { MaxLength = 96 });
        Assert.Equal([96, 96, 96, 12, 20], data.Sequences.Select(s => s.Ids.Length));

        // The model's context caps a larger maximum; a tail under the minimum length is skipped and counted.
        data = EvalDataset.Load(path, null, vocabSize: 400, contextLength: 148, new EvalDataOptions { MaxLength = 1000, MinLength = 20 });
        Assert.Equal([148, 148, 20], data.Sequences.Select(s => s.Ids.Length));
        Assert.Equal(1, data.TooShort);
    }

    [Fact]
    public void Reading_stops_at_the_maximum_number_of_sequences()
    {
        string path = Write("many.jsonl", [.. Enumerable.Range(0, 10).Select(i => IdsLine(10, first: 10 + i))]);
        var data = EvalDataset.Load(path, null, vocabSize: 300, contextLength: 128, new EvalDataOptions { MaxSequences = 4 });
        Assert.Equal([10, 11, 12, 13], data.Sequences.Select(s => s.Ids[0]));
        Assert.True(data.StoppedEarly);
        Assert.False(EvalDataset.Load(path, null, 300, 128, new EvalDataOptions { MaxSequences = 10 }).StoppedEarly);
    }

    [Fact]
    public void Options_that_leave_no_room_for_a_continuation_are_refused()
    {
        string path = Write("data.jsonl", IdsLine(10));
        var e = Assert.Throws<ArgumentException>(() => EvalDataset.Load(path, null, 300, 128, new EvalDataOptions { MinLength = 5 }));
        Assert.Contains("at least 9", e.Message);
        e = Assert.Throws<ArgumentException>(() => EvalDataset.Load(path, null, 300, 128, new EvalDataOptions { MaxLength = 8 }));
        Assert.Contains("maximum length 8 is below the minimum length 9", e.Message);
    }

    [Fact]
    public void Shared_sequences_between_two_sets_are_counted()
    {
        var first = EvalDataset.Load(Write("a.jsonl", IdsLine(10), IdsLine(10, first: 30), IdsLine(10, first: 50)), null, 300, 128);
        var second = EvalDataset.Load(Write("b.jsonl", IdsLine(10, first: 30), IdsLine(11, first: 50)), null, 300, 128);
        Assert.Equal(1, first.CountShared(second.Sequences));
    }
}
