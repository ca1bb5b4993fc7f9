using System.Globalization;

namespace FtpCluster.Cluster.Tests;

/// <summary>Prometheus' text format, as far as the tests read it: each sample's metric name, labels and value.</summary>
public sealed class PrometheusText
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples;

    private PrometheusText(List<(string, Dictionary<string, string>, double)> samples) => _samples = samples;

    public IReadOnlySet<string> Names => _samples.Select(s => s.Name).ToHashSet();

    public static PrometheusText Join(IEnumerable<PrometheusText> texts) => new([.. texts.SelectMany(t => t._samples)]);

    /// <summary>The sum of a metric's samples, of those with the given label only when one is given.</summary>
    public double Sum(string name, (string Attribute, string Value)? label = null) => _samples
        .Where(s => s.Name == name && (label is not { } l || s.Labels.GetValueOrDefault(LabelName(l.Attribute)) == l.Value))
        .Sum(s => s.Value);

    /// <summary>The distinct values a metric's samples have for an attribute.</summary>
    public IEnumerable<string> LabelValues(string name, string attribute) => _samples
        .Where(s => s.Name == name).Select(s => s.Labels.GetValueOrDefault(LabelName(attribute))).OfType<string>().Distinct();

    /// <summary>An OpenTelemetry attribute's name as a Prometheus label: every character outside [a-zA-Z0-9_] an underscore.</summary>
    private static string LabelName(string attribute) => string.Concat(attribute.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'));

    public static PrometheusText Parse(string text)
    {
        var samples = new List<(string, Dictionary<string, string>, double)>();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int brace = line.IndexOf('{', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            var labels = new Dictionary<string, string>();
            string name, rest;
            if (brace >= 0 && brace < space)
            {
                int close = line.LastIndexOf('}');
                name = line[..brace];
                foreach (string pair in line[(brace + 1)..close].Split("\",", StringSplitOptions.RemoveEmptyEntries))
                {
                    int equals = pair.IndexOf('=', StringComparison.Ordinal);
                    labels[pair[..equals]] = pair[(equals + 1)..].Trim('"');
                }
                rest = line[(close + 1)..].Trim();
            }
            else
            {
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }
            string value = rest.Split(' ')[0];
            samples.Add((name, labels, value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            }));
        }
        return new PrometheusText(samples);
    }
}
