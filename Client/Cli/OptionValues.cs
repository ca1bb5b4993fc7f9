using System.CommandLine;

namespace FtpCluster.Client.Cli;

/// <summary>Reading option values in a command's action, where presence and requirement are checked.</summary>
internal static class OptionValues
{
    /// <summary>Whether the option is on the command line, not merely at its default.</summary>
    public static bool IsGiven(this ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>The option's value; its absence is a usage error (<c>--model is required</c>).</summary>
    public static string Required(this ParseResult parse, Option<string> option) =>
        parse.GetValue(option) ?? throw new UsageException($"{option.Name} is required");
}
