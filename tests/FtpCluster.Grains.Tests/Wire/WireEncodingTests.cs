using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Tests.Wire;

public sealed class WireEncodingTests
{
    [Theory]
    [InlineData("f32", WireEncoding.F32)]
    [InlineData("f16", WireEncoding.F16)]
    [InlineData("bf16", WireEncoding.BF16)]
    [InlineData("int8", WireEncoding.Int8PerBlock32)]
    [InlineData("int8-row", WireEncoding.Int8PerRow)]
    [InlineData(" BF16 ", WireEncoding.BF16)]
    public void Command_line_words_parse(string word, WireEncoding expected) =>
        Assert.Equal(expected, WireEncodings.Parse(word));

    [Fact]
    public void Every_encoding_has_a_word_that_parses_back() =>
        Assert.All(WireEncodings.All, e => Assert.Equal(e, WireEncodings.Parse(e.CliWord())));

    [Theory]
    [InlineData("int4")]
    [InlineData("")]
    [InlineData("float32")]
    public void Other_words_are_refused_with_the_choices(string word)
    {
        var error = Assert.Throws<ArgumentException>(() => WireEncodings.Parse(word));
        Assert.Contains($"unknown wire encoding '{word}'", error.Message);
        Assert.Contains("expected f32, f16, bf16, int8", error.Message);
    }
}
