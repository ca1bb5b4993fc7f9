using System.CommandLine;
using System.CommandLine.Parsing;

namespace FtpCluster.Client.Cli;

/// <summary>
/// What is wrong with a command line, as the one line ftpcluster prints before exiting with code 2, or
/// null when the parse has nothing to refuse. System.CommandLine reports in several lines of its own
/// words; these are the ftpcluster command line's, and a mistyped command or option is answered with
/// the nearest known one (<c>unknown option: --max-tokenz (did you mean --max-tokens?)</c>).
/// </summary>
internal static class UsageError
{
    /// <summary>Edits (insertions, deletions, substitutions) a typo may be from the word it meant, at most.</summary>
    private const int MaxTypoDistance = 3;

    public static string? Of(ParseResult parse)
    {
        var command = parse.CommandResult;
        if (command.Children.OfType<OptionResult>().FirstOrDefault(o => o.IdentifierTokenCount > 1) is { } twice)
            return $"{twice.Option.Name} is given twice";
        // An unknown option where a command takes an argument is read as the argument's value: unknown all the same.
        var stray = command.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).Select(t => t.Value).Where(v => v.StartsWith('-'))
            .Concat(parse.UnmatchedTokens).ToList();
        if (stray.Count > 0) return Unmatched(command, stray);
        if (IsGroup(command.Command))
            return $"{(command.Command is RootCommand ? "expected a command" : Described(command) + " expects a command")}: " +
                $"{string.Join(", ", Subcommands(command.Command))} ({CommandPath(command)} --help describes them)";
        if (parse.Errors.Count == 0) return null;
        var error = parse.Errors[0];
        return error.SymbolResult switch
        {
            OptionResult { Tokens.Count: 0 } option => $"{option.Option.Name} needs a value",
            ArgumentResult { Tokens.Count: 0, Parent: CommandResult parent } argument =>
                $"{Described(parent)} needs {argument.Argument.Name} ({CommandPath(parent)} --help describes it)",
            _ => error.Message,
        };
    }

    private static string Unmatched(CommandResult command, IReadOnlyList<string> tokens)
    {
        if (IsGroup(command.Command) && !tokens[0].StartsWith('-'))
        {
            string prefix = command.Command is RootCommand ? "" : Described(command) + " ";
            return $"unknown command '{prefix}{tokens[0]}'"
                + (Closest(tokens[0], Subcommands(command.Command)) is { } meant ? $" (did you mean {prefix}{meant}?)" : "");
        }
        // After an unknown option its value is left over too: the option is what to name.
        var options = tokens.Where(t => t.StartsWith('-')).ToList();
        if (options.Count == 0) return $"unexpected argument '{tokens[0]}' (options look like --name value)";
        var known = KnownOptions(command).ToList();
        var named = options.Select(o => Closest(o, known) is { } meant ? $"{o} (did you mean {meant}?)" : o);
        return $"unknown option{(options.Count > 1 ? "s" : "")}: {string.Join(", ", named)}";
    }

    /// <summary>A command that only groups others (bench, models): it has no action of its own.</summary>
    private static bool IsGroup(Command command) => command.Action is null && command.Subcommands.Count > 0;

    private static IEnumerable<string> Subcommands(Command group) => group.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);

    /// <summary>The command's own options and those it inherits (--help), by every name they answer to.</summary>
    private static IEnumerable<string> KnownOptions(CommandResult command)
    {
        var inherited = Ancestors(command).Skip(1).SelectMany(c => c.Command.Options.Where(o => o.Recursive));
        return command.Command.Options.Concat(inherited).Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Distinct();
    }

    /// <summary>The command and the commands above it, innermost first.</summary>
    private static IEnumerable<CommandResult> Ancestors(CommandResult command)
    {
        for (CommandResult? c = command; c is not null; c = c.Parent as CommandResult) yield return c;
    }

    /// <summary>The candidate fewest edits away, if near enough to be what was meant (a short word allows fewer edits).</summary>
    private static string? Closest(string word, IEnumerable<string> candidates)
    {
        int allowed = Math.Min(MaxTypoDistance, word.TrimStart('-').Length / 2);
        return candidates
            .Select(candidate => (Candidate: candidate, Distance: EditDistance(word, candidate)))
            .Where(c => c.Distance <= allowed)
            .OrderBy(c => c.Distance)
            .Select(c => c.Candidate)
            .FirstOrDefault();
    }

    /// <summary>Levenshtein distance: the fewest single-character insertions, deletions and substitutions from one word to the other.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>"ftpcluster bench model", as a user types it.</summary>
    private static string CommandPath(CommandResult command) =>
        string.Join(' ', Ancestors(command).Reverse().Select(c => c.Command is RootCommand ? "ftpcluster" : c.Command.Name));

    /// <summary>How a message names a command: "bench model", the words after ftpcluster (none for the root).</summary>
    private static string Described(CommandResult command) => CommandPath(command)["ftpcluster".Length..].TrimStart();
}
