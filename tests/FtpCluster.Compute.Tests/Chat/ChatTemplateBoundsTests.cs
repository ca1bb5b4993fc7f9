using System.Text.Json;
using FtpCluster.Compute.Chat;

namespace FtpCluster.Compute.Tests.Chat;

/// <summary>Renderings stop at their bounds instead of hanging or exhausting memory; parsed templates are shared safely.</summary>
public sealed class ChatTemplateBoundsTests
{
    private static readonly JsonElement NoMessages = JsonDocument.Parse("[]").RootElement;

    private static ChatTemplateException RenderFails(string source, ChatTemplateLimits? limits = null) =>
        Assert.Throws<ChatTemplateException>(() => new ChatTemplate(source) { Limits = limits ?? ChatTemplateLimits.Default }.Render(NoMessages));

    [Fact]
    public void Output_beyond_the_bound_stops_the_rendering()
    {
        var error = RenderFails("{% for i in range(100) %}0123456789{% endfor %}", new ChatTemplateLimits(MaxOutputChars: 500));

        Assert.Equal("chat template line 1, column 26: the rendering exceeds 500 characters", error.Message);
    }

    [Fact]
    public void The_default_output_bound_is_8_MiB()
    {
        var error = RenderFails("{% for i in range(9000) %}{{ 'x' * 1000 }}{% endfor %}");

        Assert.Equal("chat template line 1, column 27: the rendering exceeds 8388608 characters", error.Message);
    }

    [Fact]
    public void Loop_iterations_beyond_the_bound_stop_the_rendering()
    {
        var error = RenderFails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");

        Assert.Equal("chat template line 1, column 32: the rendering exceeds 1000000 loop iterations", error.Message);
    }

    [Fact]
    public void A_string_doubled_in_a_loop_stops_at_the_string_bound()
    {
        var error = RenderFails("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");

        // 2^24 characters: the doubling that first passes 8 Mi is refused before it is built.
        Assert.Equal("chat template line 1, column 75: a string of 16777216 characters exceeds the bound of 8388608", error.Message);
    }

    [Fact]
    public void Strings_built_and_dropped_count_against_the_work_bound()
    {
        var error = RenderFails("{% for i in range(1000) %}{% set s = 'x' * 1000 %}{% endfor %}", new ChatTemplateLimits(MaxWorkChars: 100_000));

        Assert.Equal("chat template line 1, column 42: the rendering produced more than 100000 characters of strings", error.Message);
    }

    [Fact]
    public void Recursive_macros_stop_at_the_call_depth_bound()
    {
        var error = RenderFails("{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}");

        Assert.Equal("chat template line 1, column 27: macro calls nest deeper than 100", error.Message);
    }

    [Fact]
    public void Deeply_nested_expressions_are_refused_when_parsing()
    {
        var error = Assert.Throws<ChatTemplateException>(() => new ChatTemplate("{{ " + new string('(', 500) + "1" + new string(')', 500) + " }}"));

        Assert.StartsWith("chat template line 1, column ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith(": expressions nest deeper than 100", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_parsed_template_renders_correctly_from_several_threads_at_once()
    {
        var template = new ChatTemplate(File.ReadAllText(Path.Combine(ChatTestFiles.TemplatesFolder, "features.jinja")));
        JsonElement conversations = ChatTestFiles.ReadJson("Templates", "conversations.json").GetProperty("conversations");
        JsonElement[] inputs = [.. conversations.EnumerateObject().Select(c => c.Value)];
        string[] expected = [.. inputs.Select(messages => template.Render(messages))];

        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            int which = i % inputs.Length;
            Assert.Equal(expected[which], template.Render(inputs[which]));
        });
    }

    [Fact]
    public void Strftime_now_formats_the_clocks_local_time()
    {
        var clock = new FixedClock(new DateTimeOffset(2024, 7, 9, 15, 4, 5, TimeSpan.Zero));
        var template = new ChatTemplate("Today is {{ strftime_now('%d %B %Y') }} ({{ strftime_now('%a %b %j %H:%M:%S %I%p %y-%m %%') }})") { Clock = clock };

        Assert.Equal("Today is 09 July 2024 (Tue Jul 191 15:04:05 03PM 24-07 %)", template.Render(NoMessages));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
