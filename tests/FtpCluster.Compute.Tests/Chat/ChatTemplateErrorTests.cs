using System.Text.Json;
using FtpCluster.Compute.Chat;

namespace FtpCluster.Compute.Tests.Chat;

/// <summary>Constructs outside the supported subset, and failures, are refused with what and where.</summary>
public sealed class ChatTemplateErrorTests
{
    private static readonly JsonElement NoMessages = JsonDocument.Parse("[]").RootElement;

    [Theory]
    [InlineData("{{ text | wordwrap }}", "chat template line 1, column 11: unsupported filter 'wordwrap'")]
    [InlineData("a\n{% include 'other.jinja' %}", "chat template line 2, column 4: unsupported tag 'include'")]
    [InlineData("{% for m in messages %}\n  {% filter upper %}x{% endfilter %}{% endfor %}", "chat template line 2, column 6: unsupported tag 'filter'")]
    [InlineData("{% if x is divisible_by(3) %}{% endif %}", "chat template line 1, column 12: unsupported test 'divisible_by'")]
    [InlineData("{{ messages | selectattr('role', 'matching', 'u') | list }}", "chat template line 1, column 34: unsupported test 'matching'")]
    [InlineData("{{ f(*args) }}", "chat template line 1, column 6: unsupported argument unpacking '*'")]
    [InlineData("{% for x in xs recursive %}{% endfor %}", "chat template line 1, column 16: unsupported loop option 'recursive'")]
    [InlineData("{% set x | upper %}a{% endset %}", "chat template line 1, column 10: unsupported filter on a block set")]
    [InlineData("{% break %}", "chat template line 1, column 4: '{% break %}' outside a for loop")]
    [InlineData("{% for x in xs %}\n{{ x }}", "chat template line 1, column 4: '{% for %}' is never closed: expected '{% endfor %}'")]
    [InlineData("{% endif %}", "chat template line 1, column 4: unexpected '{% endif %}'")]
    [InlineData("{{ 'open }}", "chat template line 1, column 4: unterminated string literal")]
    [InlineData("{{ x $ y }}", "chat template line 1, column 6: unexpected character '$' in a tag")]
    [InlineData("{{ x ", "chat template line 1, column 1: unclosed tag: expected '}}'")]
    [InlineData("{# never closed", "chat template line 1, column 1: unclosed comment: expected '#}'")]
    [InlineData("{{ 1 + }}", "chat template line 1, column 8: expected an expression, found '}}'")]
    [InlineData("{{ 99999999999999999999 }}", "chat template line 1, column 4: integer literal 99999999999999999999 does not fit in 64 bits")]
    public void Refuses_an_unsupported_construct_when_parsing(string source, string message)
    {
        var error = Assert.Throws<ChatTemplateException>(() => new ChatTemplate(source));

        Assert.Equal(message, error.Message);
        Assert.False(error.RaisedByTemplate);
    }

    [Theory]
    [InlineData("{{ 'text'.format(1) }}", "chat template line 1, column 10: unsupported method 'format' on a 'str' value")]
    [InlineData("{{ messages.append(1) }}", "chat template line 1, column 12: unsupported method 'append' on a 'list' value")]
    [InlineData("{{ {'a': 1}.update({}) }}", "chat template line 1, column 12: unsupported method 'update' on a 'dict' value")]
    [InlineData("\n  {{ lipsum(3) }}", "chat template line 2, column 12: unsupported function 'lipsum'")]
    [InlineData("{{ '%s' % 'x' }}", "chat template line 1, column 9: unsupported operand types for %: 'str' and 'str'")]
    [InlineData("{{ nothing.attribute }}", "chat template line 1, column 11: 'nothing' is undefined")]
    [InlineData("{{ {}.a.b }}", "chat template line 1, column 8: 'dict object' has no attribute 'a'")]
    [InlineData("{{ 'a' + 1 }}", "chat template line 1, column 8: unsupported operand types for +: 'str' and 'int'")]
    [InlineData("{{ 1 < 'a' }}", "chat template line 1, column 8: '<' not supported between instances of 'int' and 'str'")]
    [InlineData("{{ 1 // 0 }}", "chat template line 1, column 6: integer division or modulo by zero")]
    [InlineData("{{ range(200000) | length }}", "chat template line 1, column 9: range too big: the sandbox allows at most 100000 items")]
    [InlineData("{{ messages | selectattr('role') | length }}", "chat template line 1, column 36: object of type 'generator' has no len()")]
    [InlineData("{% for a, b in [1] %}{% endfor %}", "chat template line 1, column 4: cannot unpack a 'int' value into 2 loop variables")]
    [InlineData("{% set s = 'x' %}{% set s.a = 1 %}", "chat template line 1, column 21: cannot set attribute 'a' on 's': only a namespace() has attributes to set")]
    [InlineData("{{ 1 is odd(2) }}", "chat template line 1, column 9: test 'odd' takes no arguments")]
    [InlineData("{{ 'a' | trim('x', 'y') }}", "chat template line 1, column 10: 'trim' takes at most 1 argument(s), 2 given")]
    [InlineData("{{ 'a' | default(colour='red') }}", "chat template line 1, column 10: 'default' got an unexpected keyword argument 'colour'")]
    [InlineData("{{ messages | tojson }}{{ nothing | tojson }}", "chat template line 1, column 37: tojson: Object of type Undefined is not JSON serializable")]
    [InlineData("{{ strftime_now('%Q') }}", "chat template line 1, column 16: strftime_now: unsupported directive '%Q'")]
    public void Refuses_an_unsupported_or_failing_operation_when_rendering(string source, string message)
    {
        var template = new ChatTemplate(source);

        var error = Assert.Throws<ChatTemplateException>(() => template.Render(NoMessages));

        Assert.Equal(message, error.Message);
        Assert.False(error.RaisedByTemplate);
    }

    [Fact]
    public void Raise_exception_carries_the_templates_own_message_and_its_place()
    {
        var template = new ChatTemplate("{% if messages[0].role != 'user' %}\n  {{ raise_exception('Conversation must start with a user message') }}\n{% endif %}");
        using JsonDocument messages = JsonDocument.Parse("""[{"role": "assistant", "content": "hi"}]""");

        var error = Assert.Throws<ChatTemplateException>(() => template.Render(messages.RootElement));

        Assert.True(error.RaisedByTemplate);
        Assert.Equal("Conversation must start with a user message", error.Message);
        Assert.Equal(2, error.Line);
    }

    [Fact]
    public void Messages_must_be_a_json_array()
    {
        using JsonDocument notArray = JsonDocument.Parse("""{"role": "user"}""");

        var error = Assert.Throws<ChatTemplateException>(() => new ChatTemplate("x").Render(notArray.RootElement));

        Assert.Equal("messages must be a JSON array of message objects, not Object", error.Message);
    }
}
