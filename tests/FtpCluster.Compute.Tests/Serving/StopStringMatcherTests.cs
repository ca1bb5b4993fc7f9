using FtpCluster.Compute.Serving;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void A_stop_string_split_across_tokens_is_found_where_it_begins()
    {
        var matcher = new StopStringMatcher(["\n\n"]);
        Assert.False(matcher.TryFind("Hel", out _));
        Assert.False(matcher.TryFind("Hello\n", out _));
        Assert.True(matcher.TryFind("Hello\n\nWorld", out int index));
        Assert.Equal(5, index);
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var matcher = new StopStringMatcher(["World", "lo W", "!"]);
        Assert.True(matcher.TryFind("Hello World!", out int index));
        Assert.Equal(3, index);
        Assert.Equal(3, matcher.FindFirst("Hello World!"));
        Assert.Equal(-1, matcher.FindFirst("Hello"));
    }

    [Fact]
    public void Only_the_new_tail_is_searched()
    {
        var matcher = new StopStringMatcher(["END"]);
        Assert.False(matcher.TryFind("abcdef", out _));
        // Not an extension of the text before, so against the contract: an "END" in the part already searched
        // (before the last two characters of the old text) is not looked at again.
        Assert.False(matcher.TryFind("ENDdefgh", out _));
        Assert.True(matcher.TryFind("ENDdefghEND", out int index));
        Assert.Equal(8, index);
    }

    [Fact]
    public void A_character_still_being_generated_is_searched_again_once_whole()
    {
        var matcher = new StopStringMatcher(["é"]);
        Assert.False(matcher.TryFind("caf\uFFFD", out _));
        Assert.True(matcher.TryFind("café", out int index));
        Assert.Equal(3, index);
    }

    [Fact]
    public void Token_by_token_matching_agrees_with_searching_the_whole_text()
    {
        var random = new Random(5);
        string[] stops = ["ab", "bca", "cc"];
        for (int trial = 0; trial < 200; trial++)
        {
            var matcher = new StopStringMatcher(stops);
            string text = "";
            int found = -1;
            while (text.Length < 40 && found < 0)
            {
                text += new string([.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => "abcd"[random.Next(4)])]);
                if (matcher.TryFind(text, out int index)) found = index;
                else Assert.Equal(-1, matcher.FindFirst(text));
            }
            Assert.Equal(matcher.FindFirst(text), found);
        }
    }

    [Fact]
    public void No_stop_strings_never_stop_and_an_empty_one_is_refused()
    {
        Assert.False(new StopStringMatcher([]).TryFind("anything", out int index));
        Assert.Equal(-1, index);
        var error = Assert.Throws<ArgumentException>(() => new StopStringMatcher(["a", ""]));
        Assert.StartsWith("stop string 1 is empty", error.Message);
    }
}
