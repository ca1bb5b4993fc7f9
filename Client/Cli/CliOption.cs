using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace FtpCluster.Client.Cli;

/// <summary>
/// The options of the ftpcluster command line: numbers read in the invariant culture, and a value that
/// cannot be read refused at parse time with one line naming the option, what it expects and what it got
/// (<c>--temperature expects a number, got 'warm'</c>).
/// </summary>
internal static class CliOption
{
    /// <summary>A text value, null when the option is not given.</summary>
    public static Option<string> Text(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description };

    /// <summary>A switch: present or not, it takes no value.</summary>
    public static Option<bool> Flag(string name, string description) =>
        new(name) { Description = description, Arity = ArgumentArity.Zero };

    public static Option<int> Int(string name, string helpName, string description, int defaultValue) =>
        new(name)
        {
            HelpName = helpName, Description = description, DefaultValueFactory = _ => defaultValue,
            CustomParser = result => Number<int>(result, NumberStyles.Integer, "an integer"),
        };

    /// <summary>An integer whose absence means something of its own: null when not given.</summary>
    public static Option<int?> OptionalInt(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, CustomParser = result => Number<int>(result, NumberStyles.Integer, "an integer") };

    public static Option<float> Float(string name, string helpName, string description, float defaultValue) =>
        new(name)
        {
            HelpName = helpName, Description = description, DefaultValueFactory = _ => defaultValue,
            CustomParser = result => Number<float>(result, NumberStyles.Float, "a number"),
        };

    /// <summary>A number whose default depends on other options: null when not given.</summary>
    public static Option<float?> OptionalFloat(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, CustomParser = result => Number<float>(result, NumberStyles.Float, "a number") };

    public static Option<double?> OptionalDouble(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, CustomParser = result => Number<double>(result, NumberStyles.Float, "a number") };

    /// <summary>
    /// A value read by <paramref name="parse"/>, which throws <see cref="UsageException"/> or
    /// <see cref="ArgumentException"/> with the message to print; <paramref name="words"/> are offered
    /// to shell completion.
    /// </summary>
    public static Option<T> Parsed<T>(string name, string helpName, string description, Func<string, T> parse, IEnumerable<string> words)
    {
        var option = new Option<T>(name)
        {
            HelpName = helpName,
            Description = description,
            CustomParser = result =>
            {
                try
                {
                    return parse(result.Tokens[0].Value);
                }
                catch (Exception e) when (e is UsageException or ArgumentException)
                {
                    result.AddError(e.Message);
                    return default!;
                }
            },
        };
        // Instead of System.CommandLine's own for an enum type: its member names, which are not the words.
        option.CompletionSources.Clear();
        option.CompletionSources.Add([.. words]);
        return option;
    }

    /// <summary>Offers <paramref name="words"/> to shell completion without refusing others (the command does).</summary>
    public static Option<T> Completing<T>(this Option<T> option, IEnumerable<string> words)
    {
        option.CompletionSources.Add([.. words]);
        return option;
    }

    private static T Number<T>(ArgumentResult result, NumberStyles style, string what) where T : struct, INumberBase<T>
    {
        string text = result.Tokens[0].Value;
        if (T.TryParse(text, style, CultureInfo.InvariantCulture, out var value)) return value;
        result.AddError($"{OptionName(result)} expects {what}, got '{text}'");
        return default;
    }

    private static string OptionName(ArgumentResult result) => result.Parent is OptionResult option ? option.Option.Name : result.Argument.Name;
}
