using System.Text;
using FtpCluster.Compute.Serving;
using FtpCluster.Compute.Tests.Models;
using FtpCluster.Compute.Tests.Tokenizers;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Serving;

/// <summary>
/// The incremental decoder gives, after every token, exactly what decoding all the tokens together gives, with each
/// tokenizer this project loads; and it decodes a bounded number of tokens per token added.
/// </summary>
public sealed class IncrementalDecoderTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> SharedTokenizers => ["llama2c tokenizer.bin", "llama2c tok512.bin", "sentencepiece tokenizer.model", "gguf from tokenizer.model"];

    public static TheoryData<string> ByteLevelTokenizers =>
        [.. ByteLevelBpeFixture.Layouts.SelectMany(layout => new[] { $"tokenizer.json {layout}", $"gguf {layout}" })];

    [SharedModelsTheory]
    [MemberData(nameof(SharedTokenizers))]
    public void Each_prefix_of_an_answer_decodes_as_decoding_it_whole_with_a_sentencepiece_vocabulary(string tokenizer) =>
        EveryPrefixDecodesAsTheWhole(Load(tokenizer));

    [Theory]
    [MemberData(nameof(ByteLevelTokenizers))]
    public void Each_prefix_of_an_answer_decodes_as_decoding_it_whole_with_a_byte_level_vocabulary(string tokenizer) =>
        EveryPrefixDecodesAsTheWhole(Load(tokenizer));

    [Fact]
    public void A_long_answer_costs_a_bounded_number_of_decoded_tokens_per_token()
    {
        var tokenizer = new CountingTokenizer(HuggingFaceBpeTokenizer.Load(TokenizerFiles.WriteJson(_temp, ByteLevelBpeFixture.Create("llama3"))));
        int[] answer = [.. Enumerable.Repeat(0, 40).SelectMany(_ => tokenizer.Encode("The pipeline splits the model into stages, 漢字 😀.", addBos: false))];
        var decoder = new IncrementalDecoder(tokenizer);
        var generated = new List<int>();
        foreach (int id in answer)
        {
            generated.Add(id);
            decoder.Decode(generated);
        }
        Assert.Equal(tokenizer.Decode(answer), decoder.Decode(generated));
        // Decoding the whole answer after each token would decode n (n + 1) / 2 tokens.
        Assert.True(tokenizer.Decoded <= 12L * answer.Length, $"{tokenizer.Decoded} tokens decoded for an answer of {answer.Length}");
    }

    [Fact]
    public void A_decoder_whose_text_is_not_written_token_by_token_in_order_is_decoded_whole()
    {
        // Writes the tokens last first: a window's text does not begin with its context's.
        var backwards = new TextTokenizer(ids => string.Concat(ids.ToArray().Reverse().Select(id => (char)('a' + id))));
        var decoder = new IncrementalDecoder(backwards);
        var generated = new List<int>();
        foreach (int id in new[] { 0, 1, 2, 3, 4, 5 })
        {
            generated.Add(id);
            Assert.Equal(backwards.Decode([.. generated]), decoder.Decode(generated));
        }
    }

    [Fact]
    public void An_answer_that_shrinks_is_refused()
    {
        var decoder = new IncrementalDecoder(new TextTokenizer(ids => new string('x', ids.Length)));
        decoder.Decode([1, 2, 3]);
        var error = Assert.Throws<ArgumentException>(() => decoder.Decode([1, 2]));
        Assert.Contains("had 3 tokens and now has 2", error.Message);
    }

    /// <summary>
    /// Two answers that meet the decoders' rules at the start of a text, and answers made of pieces of encoded texts
    /// (whole words, characters split over byte tokens, spaces, newlines) and random ids (BOS, EOS and other special
    /// tokens among them).
    /// </summary>
    private static void EveryPrefixDecodesAsTheWhole(ITokenizer tokenizer)
    {
        // Bytes first, then a word that keeps its space (a SentencePiece decoder drops it only from a first piece).
        int[] bytesFirst = tokenizer.Encode("😀 in the", addBos: false);
        // Llama 2 drops the space after BOS.
        int[] x = tokenizer.Encode("x", addBos: false), y = tokenizer.Encode("y", addBos: false), hello = tokenizer.Encode("Hello world", addBos: false);
        int[] wordAfterBos = [.. x, tokenizer.BosId, .. hello];
        List<int[]> answers = [bytesFirst, wordAfterBos];

        // Also when BOS ends a call, after text (a poll that found both).
        var bosLast = new IncrementalDecoder(tokenizer);
        if (tokenizer.BosId >= 0)
            foreach (int[] call in new[] { x, [.. x, .. y, tokenizer.BosId], [.. x, .. y, tokenizer.BosId, .. hello] })
                Assert.Equal(tokenizer.Decode(call), bosLast.Decode(call));
        string[] texts = [.. Llama2cTokenizerTests.VariedTexts, "漢字 and 😀👍🏽 in a line\n\nthen  two spaces", " leading space"];
        int[][] encoded = [.. texts.Select(t => tokenizer.Encode(t, addBos: false))];
        var random = new Random(5);
        while (answers.Count < 150)
        {
            var answer = new List<int>();
            while (answer.Count < 40)
            {
                int[] source = encoded[random.Next(encoded.Length)];
                switch (random.Next(4))
                {
                    case 0:
                        answer.Add(random.Next(tokenizer.VocabSize));
                        break;
                    case 1:
                        answer.Add(random.Next(2) == 0 ? tokenizer.BosId : tokenizer.EosId);
                        break;
                    default:
                        int from = random.Next(source.Length);
                        answer.AddRange(source.Skip(from).Take(random.Next(1, 8)));
                        break;
                }
            }
            answers.Add([.. answer]);
        }
        // A token at a time, as the stop strings are looked for, and several at once, as a poll may find them.
        var strides = new Random(6);
        foreach (var (answer, oneByOne) in answers.Select((a, i) => (a.Where(id => id >= 0).ToArray(), i % 2 == 0)))
        {
            var decoder = new IncrementalDecoder(tokenizer);
            for (int n = 1; n <= answer.Length; n = n == answer.Length ? n + 1 : Math.Min(answer.Length, n + (oneByOne ? 1 : strides.Next(1, 4))))
            {
                string whole = tokenizer.Decode(answer.AsSpan(0, n));
                string incremental = decoder.Decode(answer[..n]);
                Assert.True(whole == incremental,
                    $"after {n} tokens [{string.Join(", ", answer.Take(n))}]: whole \"{Escape(whole)}\", incremental \"{Escape(incremental)}\"");
            }
        }
    }

    private ITokenizer Load(string tokenizer)
    {
        string llama2 = SharedModels.PathTo("llama2-tokenizer", "tokenizer.model");
        return tokenizer switch
        {
            "llama2c tokenizer.bin" => TokenizerLoader.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.bin"), 32000),
            "llama2c tok512.bin" => TokenizerLoader.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512),
            "sentencepiece tokenizer.model" => SentencePieceModelTokenizer.Load(llama2),
            "gguf from tokenizer.model" => TokenizerLoader.Load(TokenizerFiles.WriteGguf(_temp, GgufVocabulary.FromSentencePieceModel(llama2)), 32000),
            _ when tokenizer.StartsWith("tokenizer.json ", StringComparison.Ordinal) =>
                HuggingFaceBpeTokenizer.Load(TokenizerFiles.WriteJson(_temp, ByteLevelBpeFixture.Create(tokenizer["tokenizer.json ".Length..]))),
            _ => TokenizerLoader.Load(TokenizerFiles.WriteGguf(_temp, ByteLevelBpeFixture.Create(tokenizer["gguf ".Length..]).ToGguf())),
        };
    }

    private static string Escape(string text)
    {
        var escaped = new StringBuilder();
        foreach (char c in text) escaped.Append(c is < ' ' or '\uFFFD' or (>= '\uD800' and <= '\uDFFF') ? $"\\u{(int)c:X4}" : c.ToString());
        return escaped.ToString();
    }

    /// <summary>A tokenizer that counts the tokens it is asked to decode.</summary>
    private sealed class CountingTokenizer(ITokenizer tokenizer) : ITokenizer
    {
        public long Decoded { get; private set; }

        public int VocabSize => tokenizer.VocabSize;
        public int BosId => tokenizer.BosId;
        public int EosId => tokenizer.EosId;

        public int[] Encode(string text, bool addBos = true) => tokenizer.Encode(text, addBos);

        public string Decode(ReadOnlySpan<int> ids)
        {
            Decoded += ids.Length;
            return tokenizer.Decode(ids);
        }
    }

    /// <summary>Token i is the letter 'a' + i, written as <paramref name="decode"/> says.</summary>
    private sealed class TextTokenizer(Func<ReadOnlySpan<int>, string> decode) : ITokenizer
    {
        public int VocabSize => 26;
        public int BosId => -1;
        public int EosId => -1;

        public int[] Encode(string text, bool addBos = true) => [.. text.Select(c => c - 'a')];

        public string Decode(ReadOnlySpan<int> ids) => decode(ids);
    }
}
