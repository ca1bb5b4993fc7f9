using System.Globalization;

namespace FtpCluster.Client;

/// <summary>A command line error: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// "--name value" options and "--flag" switches after the command words. Every option a command
/// reads is declared by reading it; anything left over is an error naming the unknown option.
/// </summary>
public sealed class Arguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string arg = e.Current;
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                throw new UsageException($"unexpected argument '{arg}' (options look like --name value)");
            string name = arg[2..];
            string? value = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            else if (!flags.Contains(name))
            {
                if (!e.MoveNext()) throw new UsageException($"--{name} needs a value");
                value = e.Current;
            }
            if (!_options.TryAdd(name, value)) throw new UsageException($"--{name} is given twice");
        }
    }

    public bool Has(string name)
    {
        _read.Add(name);
        return _options.ContainsKey(name);
    }

    public bool Flag(string name) => Has(name);

    public string? String(string name) => Has(name) ? _options[name] : null;

    public string Required(string name) => String(name) ?? throw new UsageException($"--{name} is required");

    public int Int(string name, int fallback) => Parse(name, fallback, s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture), "an integer");

    public float Float(string name, float fallback) => Parse(name, fallback, s => float.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture), "a number");

    public double Double(string name, double fallback) => Parse(name, fallback, s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture), "a number");

    /// <summary>Throws for any option no command read: a typo never passes silently.</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown option{(unknown.Count > 1 ? "s" : "")}: {string.Join(", ", unknown.Select(u => "--" + u))}");
    }

    private T Parse<T>(string name, T fallback, Func<string, T> parse, string what)
    {
        var s = String(name);
        if (s is null) return fallback;
        try
        {
            return parse(s);
        }
        catch (FormatException)
        {
            throw new UsageException($"--{name} expects {what}, got '{s}'");
        }
        catch (OverflowException)
        {
            throw new UsageException($"--{name} expects {what}, got '{s}'");
        }
    }
}
