using System.Text;
using FtpCluster.Compute.Serving;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class StreamingTextTests
{
    /// <summary>What a streamed answer sends for tokens given as UTF-8 byte pieces: after each token the bytes so far
    /// are decoded together (a partial character comes out as U+FFFD), as the generation loop decodes its tokens.</summary>
    private sealed record Streamed(List<string> Pieces, string Rest, string FinalText)
    {
        public string Joined => string.Concat(Pieces) + Rest;
    }

    /// <param name="stopAtFirstStop">Whether generation ends at the first token after which a stop string occurs, as
    /// the cluster's loop does; otherwise every token is generated and the final text is cut afterwards.</param>
    private static Streamed Stream(IReadOnlyList<string> stops, IEnumerable<byte[]> tokens, bool stopAtFirstStop = true)
    {
        var streaming = new StreamingText(stops);
        var matcher = new StopStringMatcher(stops);
        var bytes = new List<byte>();
        var pieces = new List<string>();
        foreach (byte[] token in tokens)
        {
            bytes.AddRange(token);
            string decoded = Encoding.UTF8.GetString([.. bytes]);
            pieces.Add(streaming.Next(decoded));
            if (stopAtFirstStop && matcher.FindFirst(decoded) >= 0) break;
        }
        string final = Encoding.UTF8.GetString([.. bytes]);
        int cut = matcher.FindFirst(final);
        if (cut >= 0) final = final[..cut];
        string rest = streaming.Finish(final);
        Assert.Equal(final.Length, streaming.SentLength);
        return new Streamed(pieces, rest, final);
    }

    private static IEnumerable<byte[]> Tokens(params string[] texts) => texts.Select(Encoding.UTF8.GetBytes);

    [Fact]
    public void With_no_stop_strings_each_token_is_sent_as_it_comes()
    {
        var streamed = Stream([], Tokens("Hello", ",", " world"));
        Assert.Equal(["Hello", ",", " world"], streamed.Pieces);
        Assert.Equal("", streamed.Rest);
        Assert.Equal("Hello, world", streamed.Joined);
    }

    [Fact]
    public void A_poll_that_finds_no_new_text_sends_nothing_with_or_without_stop_strings()
    {
        // A poll may come back with no new token (a long prefill), or with tokens that decode to nothing (BOS, a
        // tokenizer-less model's): the same text again, or still none.
        foreach (string[] stops in new[] { Array.Empty<string>(), ["END"] })
        {
            var streaming = new StreamingText(stops);
            Assert.Equal("", streaming.Next(""));
            Assert.Equal("", streaming.Next(""));
            Assert.Equal("Hi", streaming.Next("Hi"));
            Assert.Equal("", streaming.Next("Hi"));
            Assert.Equal(" there", streaming.Finish("Hi there"));
        }
    }

    [Fact]
    public void A_character_split_across_tokens_is_sent_once_whole()
    {
        byte[] emoji = Encoding.UTF8.GetBytes("😀");
        byte[] kanji = Encoding.UTF8.GetBytes("漢");
        byte[][] tokens =
        [
            [(byte)'a', emoji[0]], [emoji[1]], [emoji[2]], [emoji[3], kanji[0], kanji[1]], [kanji[2], (byte)'b'],
        ];
        var streamed = Stream([], tokens);
        Assert.Equal(["a", "", "", "😀", "漢b"], streamed.Pieces);
        Assert.Equal("a😀漢b", streamed.Joined);
    }

    [Fact]
    public void A_replacement_character_inside_the_text_is_sent_since_it_can_no_longer_change()
    {
        var streaming = new StreamingText([]);
        Assert.Equal("a\uFFFDb", streaming.Next("a\uFFFDb"));
        Assert.Equal("", streaming.Next("a\uFFFDb\uFFFD"));
        Assert.Equal("\uFFFD", streaming.Finish("a\uFFFDb\uFFFD"));
    }

    [Fact]
    public void A_stop_string_split_across_tokens_is_never_sent()
    {
        var streamed = Stream(["\n\n"], Tokens("Hello", "\n", "\nWorld"));
        Assert.Equal(["Hello", "", ""], streamed.Pieces);
        Assert.Equal("", streamed.Rest);
        Assert.Equal("Hello", streamed.FinalText);
    }

    [Fact]
    public void The_start_of_a_stop_string_is_held_back_until_it_turns_out_not_to_be_one()
    {
        var streamed = Stream(["\n\n"], Tokens("Hello", "\n", "x"));
        Assert.Equal(["Hello", "", "\nx"], streamed.Pieces);
        Assert.Equal("Hello\nx", streamed.Joined);
    }

    [Fact]
    public void A_stop_string_at_the_very_start_sends_nothing()
    {
        var streamed = Stream(["##"], Tokens("#", "#abc"));
        Assert.Equal(["", ""], streamed.Pieces);
        Assert.Equal("", streamed.Rest);
        Assert.Equal("", streamed.FinalText);
    }

    [Fact]
    public void With_stop_strings_sharing_a_start_the_longest_possible_one_is_held_back()
    {
        var streamed = Stream(["abcd", "abx"], Tokens("x", "ab", "c", "y"));
        Assert.Equal(["x", "", "", "abcy"], streamed.Pieces);

        streamed = Stream(["abcd", "abx"], Tokens("x", "ab", "x", "y"));
        Assert.Equal(["x", "", ""], streamed.Pieces);
        Assert.Equal("x", streamed.FinalText);
    }

    [Fact]
    public void Text_before_a_stop_string_found_is_held_back_while_it_could_begin_an_earlier_one()
    {
        // "bc" stops the answer at 2, but "abcd" might still complete, beginning at 1: the "a" waits for the end.
        var streamed = Stream(["abcd", "bc"], Tokens("x", "a", "b", "c"));
        Assert.Equal(["x", "", "", ""], streamed.Pieces);
        Assert.Equal("a", streamed.Rest);
        Assert.Equal("xa", streamed.FinalText);

        streamed = Stream(["abcd", "bc"], Tokens("x", "a", "b", "c", "d"), stopAtFirstStop: false);
        Assert.Equal("", streamed.Rest);
        Assert.Equal("x", streamed.FinalText);
    }

    [Fact]
    public void Nothing_from_a_stop_string_on_is_sent_even_if_a_later_decode_loses_it()
    {
        var streaming = new StreamingText(["END"]);
        Assert.Equal("ok", streaming.Next("okEND"));
        Assert.Equal("", streaming.Next("okENx more"));
        Assert.Equal("", streaming.Finish("ok"));
    }

    [Fact]
    public void A_decode_that_takes_back_sent_text_sends_nothing_until_it_agrees_again()
    {
        var streaming = new StreamingText([]);
        Assert.Equal("ab", streaming.Next("ab"));
        Assert.Equal("", streaming.Next("aX"));
        Assert.Equal(2, streaming.SentLength);
        Assert.Equal("cd", streaming.Next("abcd"));
        Assert.Equal("e", streaming.Finish("abcde"));
    }

    [Fact]
    public void A_final_text_that_does_not_begin_with_what_was_sent_is_refused_showing_both()
    {
        var streaming = new StreamingText([]);
        streaming.Next("Hello there");
        var error = Assert.Throws<InvalidOperationException>(() => streaming.Finish("Help"));
        Assert.Contains("character 3", error.Message);
        Assert.Contains("\"Hello there\"", error.Message);
        Assert.Contains("\"Help\"", error.Message);
    }

    [Fact]
    public void A_long_mismatch_is_shown_shortened_around_where_the_texts_differ()
    {
        var streaming = new StreamingText([]);
        string sent = new string('a', 100) + "XYZ";
        streaming.Next(sent);
        var error = Assert.Throws<InvalidOperationException>(() => streaming.Finish(new string('a', 100) + "Q" + new string('b', 100)));
        Assert.Contains("character 100", error.Message);
        Assert.Contains("\"…" + new string('a', 20) + "XYZ\"", error.Message);
        Assert.Contains("\"…" + new string('a', 20) + "Q" + new string('b', 19) + "…\"", error.Message);
    }

    [Fact]
    public void A_finished_answer_takes_no_more_text()
    {
        var streaming = new StreamingText([]);
        Assert.Equal("done", streaming.Finish("done"));
        Assert.Throws<InvalidOperationException>(() => streaming.Next("done more"));
        Assert.Throws<InvalidOperationException>(() => streaming.Finish("done"));
    }

    [Fact]
    public void An_empty_stop_string_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new StreamingText(["x", ""]));
    }

    [Fact]
    public void Random_token_splits_send_exactly_the_final_text_and_hold_back_only_what_may_change()
    {
        var random = new Random(17);
        string[] alphabet = ["a", "b", "c", " ", "\n", "é", "漢", "字", "😀", "👍🏽"];
        string[][] stopSets = [[], ["\n\n"], ["ab", "abc"], ["😀"], ["b😀", "字a"], ["c", "cab", "é\n"], ["aa", "a 漢"]];
        for (int trial = 0; trial < 600; trial++)
        {
            string text = string.Concat(Enumerable.Range(0, random.Next(0, 30)).Select(_ => alphabet[random.Next(alphabet.Length)]));
            string[] stops = stopSets[random.Next(stopSets.Length)];
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            var tokens = new List<byte[]>();
            for (int at = 0; at < bytes.Length;)
            {
                int length = Math.Min(bytes.Length - at, random.Next(1, 5));
                tokens.Add(bytes[at..(at + length)]);
                at += length;
            }
            bool stopAtFirstStop = random.Next(2) == 0;
            var streamed = Stream(stops, tokens, stopAtFirstStop);
            string context = $"text \"{text}\", stops [{string.Join(", ", stops)}], stopping at the first: {stopAtFirstStop}";

            Assert.True(streamed.Joined == streamed.FinalText, $"sent \"{streamed.Joined}\" but the final text is \"{streamed.FinalText}\" ({context})");
            foreach (string piece in streamed.Pieces.Append(streamed.Rest))
            {
                Assert.DoesNotContain('\uFFFD', piece);
                Assert.False(piece.Length > 0 && char.IsLowSurrogate(piece[0]), $"a piece begins inside a surrogate pair ({context})");
            }
        }
    }

    [Fact]
    public void Without_a_stop_string_in_sight_only_a_partial_character_and_a_stop_strings_start_wait()
    {
        var random = new Random(23);
        string[] stops = ["xyz", "zz"];
        string[] characters = ["a", "x", "y", "z", "é", "😀"];
        for (int trial = 0; trial < 200; trial++)
        {
            var streaming = new StreamingText(stops);
            var bytes = new List<byte>();
            for (int token = 0; token < 12; token++)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(characters[random.Next(characters.Length)]).Take(random.Next(1, 5)));
                string decoded = Encoding.UTF8.GetString([.. bytes]);
                if (decoded.Contains("xyz") || decoded.Contains("zz")) break;
                streaming.Next(decoded);
                string settled = decoded.TrimEnd('\uFFFD');
                string held = settled[streaming.SentLength..];
                Assert.True(held.Length == 0 || stops.Any(stop => stop.StartsWith(held, StringComparison.Ordinal)),
                    $"\"{held}\" of \"{decoded}\" was held back though no stop string begins with it");
            }
        }
    }
}
