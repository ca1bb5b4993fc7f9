using System.Collections;
using System.Globalization;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting;
using Microsoft.Extensions.Configuration;

namespace FtpCluster.Silo;

/// <summary>A command line or environment value that cannot configure a silo; its message is the whole explanation.</summary>
public sealed class SiloUsageException(string message) : Exception(message);

/// <summary>
/// Reads <see cref="FtpClusterSiloOptions"/> from the command line and <c>FTPCLUSTER_*</c> environment
/// variables through Microsoft.Extensions.Configuration: every switch maps onto one configuration key,
/// environment first, command line over it, and each key onto one option.
/// </summary>
public static class SiloCommandLine
{
    public const string EnvironmentPrefix = "FTPCLUSTER_";

    /// <summary>(switch, configuration key, what it takes); the environment variable is FTPCLUSTER_ + the switch in upper snake case.</summary>
    public static readonly IReadOnlyList<(string Switch, string Key, string Value)> Switches =
    [
        ("--node-name", "NodeName", "NAME"),
        ("--silo-port", "SiloPort", "PORT"),
        ("--gateway-port", "GatewayPort", "PORT"),
        ("--advertised-address", "AdvertisedAddress", "IP"),
        ("--clustering", "Clustering", "localhost|redis"),
        ("--primary", "PrimarySiloEndpoint", "IP:PORT"),
        ("--redis", "RedisConnectionString", "CONNECTION_STRING"),
        ("--cluster-id", "ClusterId", "ID"),
        ("--service-id", "ServiceId", "ID"),
        ("--device", "Device", "cpu|ilgpu-cpu|cuda|cuda:N"),
        ("--memory-budget-mb", "MemoryBudgetMb", "MB"),
        ("--threads", "Threads", "N"),
        ("--capacity", "Capacity", "X"),
        ("--max-sequences", "MaxSequences", "N"),
        ("--max-kv-cache-mb", "MaxKvCacheMb", "MB"),
        ("--max-queued-deposits", "MaxQueuedDeposits", "N"),
        ("--max-queued-deposit-mb", "MaxQueuedDepositMb", "MB"),
        ("--parent-pid", "ParentProcessId", "PID"),
        ("--http-port", "HttpPort", "PORT"),
        ("--api-key-file", "ApiKeyFile", "FILE"),
        ("--metrics", "Metrics", ""),
        ("--benchmark-grains", "BenchmarkGrains", ""),
        (ServeSwitch, "Serve", "MODEL[=NAME]"),
        ("--serve-stages", "ServeStages", "N"),
        ("--serve-tokenizer", "ServeTokenizer", "PATH"),
        ("--serve-router", "ServeRouters", "ROUTER[,ROUTER...]"),
        (ModelRootSwitch, "ModelRoots", "DIR"),
        ("--tls", "Tls", "DIR"),
        ("--tls-ca", "TlsCa", "FILE"),
        ("--tls-cert", "TlsCert", "FILE"),
        ("--tls-key", "TlsKey", "FILE"),
        ("--insecure", "Insecure", ""),
    ];

    /// <summary>A flag: a switch alone, with no value after it (<c>--metrics</c>, or <c>--metrics=false</c>); its variable is
    /// true or false. The table gives flags no value.</summary>
    private static bool IsFlag(string @switch) => Switches.Any(s => s.Switch == @switch && s.Value.Length == 0);

    /// <summary>A switch that may be given several times (each a model); its variable separates them with ';'.</summary>
    private const string ServeSwitch = "--serve";

    /// <summary>A switch that may be given several times (each a folder); its variable, <see cref="ModelRootsVariable"/>,
    /// separates them as PATH does (<see cref="Path.PathSeparator"/>).</summary>
    private const string ModelRootSwitch = "--model-root";

    /// <summary>The environment variable of <c>--model-root</c>: a path list, like PATH.</summary>
    public const string ModelRootsVariable = EnvironmentPrefix + "MODEL_ROOTS";

    public static string Usage =>
        "usage: FtpCluster.Silo " + string.Join(" ", Switches.Select(s => s.Value.Length == 0 ? $"[{s.Switch}]" : $"[{s.Switch} {s.Value}]"))
        + Environment.NewLine + "  each switch can also be set as an environment variable: "
        + string.Join(", ", Switches.Take(2).Select(s => EnvironmentVariable(s.Switch))) + ", ...";

    public static string EnvironmentVariable(string @switch) => @switch == ModelRootSwitch ? ModelRootsVariable :
        EnvironmentPrefix + @switch.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    /// <summary>Options from <paramref name="args"/> over <paramref name="environment"/>, validated.</summary>
    /// <exception cref="SiloUsageException">An unknown switch, a missing or malformed value, or an invalid option.</exception>
    public static FtpClusterSiloOptions Parse(IReadOnlyList<string> args, IDictionary environment)
    {
        var fromEnvironment = new Dictionary<string, string?>();
        foreach (var (@switch, key, _) in Switches)
            if (environment[EnvironmentVariable(@switch)] is string value)
                fromEnvironment[key] = value;

        CheckShape(args);
        var (served, afterServed) = TakeRepeated(args, ServeSwitch);
        var (modelRoots, others) = TakeRepeated(afterServed, ModelRootSwitch);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(fromEnvironment)
            .AddCommandLine([.. others.Select(a => IsFlag(a) ? a + "=true" : a)], Switches.ToDictionary(s => s.Switch, s => s.Key))
            .Build();

        var options = new FtpClusterSiloOptions();
        if (configuration["NodeName"] is { } node) options.NodeName = node;
        if (configuration["SiloPort"] is { } siloPort) options.SiloPort = ParseInt(siloPort, "--silo-port");
        if (configuration["GatewayPort"] is { } gatewayPort) options.GatewayPort = ParseInt(gatewayPort, "--gateway-port");
        if (configuration["AdvertisedAddress"] is { } address) options.AdvertisedAddress = address;
        if (configuration["Clustering"] is { } clustering) options.Clustering = clustering;
        if (configuration["PrimarySiloEndpoint"] is { } primary) options.PrimarySiloEndpoint = primary;
        if (configuration["RedisConnectionString"] is { } redis) options.RedisConnectionString = redis;
        if (configuration["ClusterId"] is { } clusterId) options.ClusterId = clusterId;
        if (configuration["ServiceId"] is { } serviceId) options.ServiceId = serviceId;
        if (configuration["Device"] is { } device) options.Device = device;
        if (configuration["MemoryBudgetMb"] is { } budget)
        {
            long mb = ParseLong(budget, "--memory-budget-mb");
            if (mb is <= 0 or > long.MaxValue / (1024 * 1024))
                throw new SiloUsageException($"--memory-budget-mb must be a positive number of MiB, got {budget}");
            options.MemoryBudgetBytes = mb * 1024 * 1024;
        }
        if (configuration["Threads"] is { } threads) options.Threads = ParseInt(threads, "--threads");
        if (configuration["Capacity"] is { } capacity)
            options.Capacity = double.TryParse(capacity, NumberStyles.Float, CultureInfo.InvariantCulture, out double c)
                ? c : throw new SiloUsageException($"--capacity: '{capacity}' is not a number");
        else
            options.MeasureCapacity = true;
        if (configuration["MaxSequences"] is { } maxSequences) options.StageLimits.MaxSequences = ParseInt(maxSequences, "--max-sequences");
        if (configuration["MaxKvCacheMb"] is { } maxKvCache) options.StageLimits.MaxKvCacheBytes = ParseMebibytes(maxKvCache, "--max-kv-cache-mb");
        if (configuration["MaxQueuedDeposits"] is { } maxDeposits) options.StageLimits.MaxQueuedDeposits = ParseInt(maxDeposits, "--max-queued-deposits");
        if (configuration["MaxQueuedDepositMb"] is { } maxDepositMb) options.StageLimits.MaxQueuedDepositBytes = ParseMebibytes(maxDepositMb, "--max-queued-deposit-mb");
        if (configuration["MemoryBudgetMb"] is null && ComputeDevices.CudaIndex(options.Device) is not null)
            options.MemoryBudgetFromDevice = true;

        if (configuration["HttpPort"] is { } httpPort) options.HttpPort = ParseInt(httpPort, "--http-port");
        if (configuration["ApiKeyFile"] is { } keyFile) options.ApiKeyFile = keyFile;
        if (configuration["Metrics"] is { } metrics) options.Metrics = ParseBool(metrics, "--metrics");
        if (configuration["BenchmarkGrains"] is { } benchmarkGrains) options.BenchmarkGrains = ParseBool(benchmarkGrains, "--benchmark-grains");
        if (served.Count > 0) options.Serve = served;
        else if (configuration["Serve"] is { } servedFromEnvironment)
            options.Serve = [.. servedFromEnvironment.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        if (configuration["ServeStages"] is { } serveStages) options.ServeStages = ParseInt(serveStages, "--serve-stages");
        if (configuration["ServeTokenizer"] is { } serveTokenizer) options.ServeTokenizer = serveTokenizer;
        if (configuration["ServeRouters"] is { } serveRouters)
            options.ServeRouters = [.. serveRouters.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        if (modelRoots.Count > 0) options.ModelRoots = modelRoots;
        else if (configuration["ModelRoots"] is { } rootsFromEnvironment)
            options.ModelRoots = [.. rootsFromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        if (configuration["ParentProcessId"] is { } parent) options.ParentProcessId = ParseInt(parent, "--parent-pid");
        options.TlsFolder = configuration["Tls"];
        options.TlsAuthorityFile = configuration["TlsCa"];
        options.TlsCertificateFile = configuration["TlsCert"];
        options.TlsKeyFile = configuration["TlsKey"];
        if (configuration["Insecure"] is { } insecure) options.Insecure = ParseBool(insecure, "--insecure");

        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new SiloUsageException(e.Message);
        }
        return options;
    }

    /// <summary>The values of every <paramref name="switch"/> (the configuration keeps only the last of a repeated switch) and the other arguments.</summary>
    private static (List<string> Values, List<string> Others) TakeRepeated(IReadOnlyList<string> args, string @switch)
    {
        var (values, rest) = (new List<string>(), new List<string>());
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == @switch) values.Add(args[++i]);
            else if (args[i].StartsWith(@switch + "=", StringComparison.Ordinal)) values.Add(args[i][(@switch.Length + 1)..]);
            else rest.Add(args[i]);
        }
        return (values, rest);
    }

    // The configuration provider accepts stray words and unknown switches silently; a silo started with
    // a typo must not run with a default instead.
    private static void CheckShape(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
                throw new SiloUsageException($"unexpected argument '{arg}' (switches take the form --name VALUE)");
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals < 0 ? arg : arg[..equals];
            if (!Switches.Any(s => s.Switch == name))
                throw new SiloUsageException($"unknown option {name} (known: {string.Join(" ", Switches.Select(s => s.Switch))})");
            if (equals >= 0 || IsFlag(name)) continue;
            if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                throw new SiloUsageException($"{name} needs a value ({Switches.First(s => s.Switch == name).Value})");
            i++;
        }
    }

    private static bool ParseBool(string text, string @switch) =>
        bool.TryParse(text, out bool value) ? value : throw new SiloUsageException($"{@switch}: '{text}' is not true or false");

    private static int ParseInt(string text, string @switch) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)
            ? value : throw new SiloUsageException($"{@switch}: '{text}' is not a whole number");

    /// <summary>A whole number of MiB as bytes; range checks are the options' own (<see cref="FtpClusterSiloOptions.Validate"/>).</summary>
    private static long ParseMebibytes(string text, string @switch)
    {
        long mb = ParseLong(text, @switch);
        return mb is < 0 or > long.MaxValue >> 20
            ? throw new SiloUsageException($"{@switch} must be a whole number of MiB from 0 to {long.MaxValue >> 20}, got {text}")
            : mb << 20;
    }

    private static long ParseLong(string text, string @switch) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value)
            ? value : throw new SiloUsageException($"{@switch}: '{text}' is not a whole number");
}
