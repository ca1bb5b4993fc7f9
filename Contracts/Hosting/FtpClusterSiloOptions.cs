using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting.Tls;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// Everything one FtpCluster silo needs to know to join a cluster and serve stages. The same options
/// drive a silo process (<c>FtpCluster.Silo</c>, from command line and environment) and a silo hosted
/// in-process (the client's embedded cluster, tests) through
/// <c>FtpClusterSiloBuilderExtensions.AddFtpCluster</c>.
/// </summary>
public sealed partial class FtpClusterSiloOptions
{
    public const string LocalhostClustering = "localhost";
    public const string RedisClustering = "redis";

    /// <summary>
    /// The name the deployment plan uses for this silo; pinned grains name it in their keys.
    /// Default: the machine name. Letters, digits, '.', '_' and '-' only (it ends grain keys after an '@').
    /// </summary>
    public string NodeName { get; set; } = Environment.MachineName;

    /// <summary>Port for silo-to-silo traffic. Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port clients connect to. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// The IP address this silo listens on, silo and gateway ports both, and that other silos and clients
    /// reach it at (it is what the silo advertises in the membership). Default 127.0.0.1 (one machine).
    /// </summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// How silos find each other: <c>localhost</c> (dev and embedded clusters: every silo names one
    /// primary silo, no external service) or <c>redis</c> (production: membership in Redis). Default localhost.
    /// </summary>
    public string Clustering { get; set; } = LocalhostClustering;

    /// <summary>
    /// Localhost clustering only: the silo endpoint (IP:port) of the primary silo. Default null: this
    /// silo is the primary.
    /// </summary>
    public string? PrimarySiloEndpoint { get; set; }

    /// <summary>Redis clustering only: a StackExchange.Redis connection string. Required with redis.</summary>
    public string? RedisConnectionString { get; set; }

    /// <summary>Silos and clients with the same cluster id form one cluster. Default "ftpcluster".</summary>
    public string ClusterId { get; set; } = "ftpcluster";

    /// <summary>Identifies the service across cluster redeployments. Default "ftpcluster".</summary>
    public string ServiceId { get; set; } = "ftpcluster";

    /// <summary>The compute device stages on this silo run on: cpu, ilgpu-cpu, cuda or cuda:N (the GPU numbered N). Default cpu.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// Weight bytes this silo may hold; the planner never gives it more layers than fit. Default: 75% of
    /// the memory available to this process (the rest is for KV caches, activations and the runtime); on CUDA
    /// the device's free memory instead (<see cref="MemoryBudgetFromDevice"/>). <c>ftpcluster devices</c> shows both.
    /// </summary>
    public long MemoryBudgetBytes { get; set; } = DefaultMemoryBudgetBytes();

    /// <summary>CPU threads for the cpu device; 0 (default) uses every core.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// The silo takes <see cref="MemoryBudgetBytes"/> from its device's free memory when it starts (90% of it, the
    /// rest left for activations and the runtime) instead of from the host's. The command line sets it for
    /// <c>--device cuda[:N]</c> without <c>--memory-budget-mb</c>, and local silos on CUDA have it. Default false.
    /// </summary>
    public bool MemoryBudgetFromDevice { get; set; }

    /// <summary>
    /// This silo's speed relative to the others, which the planner gives layers in proportion to.
    /// Default 1 (all silos equal); set it from a measurement (e.g. <c>ftpcluster bench model</c>) when they differ,
    /// or let the silo measure it (<see cref="MeasureCapacity"/>).
    /// </summary>
    public double Capacity { get; set; } = 1.0;

    /// <summary>
    /// The silo measures <see cref="Capacity"/> when it starts: GFLOP/s of a short GEMM on its own device
    /// (<c>DeviceSpeed</c>), the same measurement on every device, so a GPU silo and a CPU silo compare. The command
    /// line sets it when <c>--capacity</c> is not given. Default false.
    /// </summary>
    public bool MeasureCapacity { get; set; }

    /// <summary>
    /// The process that started this silo, for silos a parent runs for its own lifetime (the command
    /// line's embedded cluster): the silo stops when that process is gone, even if it was killed
    /// without a chance to stop its silos. Default null: the silo runs until it is told to stop.
    /// </summary>
    public int? ParentProcessId { get; set; }

    /// <summary>
    /// The port of the OpenAI-compatible HTTP API this silo serves (every deployment of the cluster). Default null: no
    /// HTTP API. Without <see cref="ApiKeyFile"/> it listens on loopback only.
    /// </summary>
    public int? HttpPort { get; set; }

    /// <summary>
    /// The HTTP API's keys, one a line (blank lines and lines starting with '#' ignored), read again when the file
    /// changes; requests must carry one as <c>Authorization: Bearer KEY</c>. Default null: no keys, loopback only.
    /// </summary>
    public string? ApiKeyFile { get; set; }

    /// <summary>
    /// Serve this silo's metrics in Prometheus' text format at <c>/metrics</c> on the HTTP API's port (beside the OTLP
    /// export that <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> turns on). Needs <see cref="HttpPort"/>. Default false.
    /// </summary>
    public bool Metrics { get; set; }

    /// <summary>
    /// Whether this silo hosts benchmark grains (the transport probes of <c>ftpcluster bench transport</c>, which send
    /// what they are asked to as fast as they can). Default false: a production silo refuses them.
    /// </summary>
    public bool BenchmarkGrains { get; set; }

    /// <summary>
    /// Models this silo deploys once the cluster has <see cref="ServeStages"/> silos: each <c>MODEL</c> or
    /// <c>MODEL=NAME</c>, a model path readable by the silos and the name requests call it by (default: the model's
    /// file or folder name). Default: none.
    /// </summary>
    public List<string> Serve { get; set; } = [];

    /// <summary>The stages (silos) each model of <see cref="Serve"/> is deployed over. Default 1.</summary>
    public int ServeStages { get; set; } = 1;

    /// <summary>The tokenizer of the models of <see cref="Serve"/>. Default null: the one beside each model.</summary>
    public string? ServeTokenizer { get; set; }

    /// <summary>FTP router artifacts the models of <see cref="Serve"/> are deployed with (requests pick one by
    /// <c>ftp.sparsity</c>; the first serves those that name none). Default: none, the models run dense.</summary>
    public List<string> ServeRouters { get; set; } = [];

    /// <summary>
    /// The folders deployments may load models, tokenizers and router artifacts from (<see cref="Hosting.ModelRoots"/>):
    /// any other path is refused before it is opened. Default: none given, the Hugging Face cache and the folders of what
    /// <see cref="Serve"/> names.
    /// </summary>
    public List<string> ModelRoots { get; set; } = [];

    /// <summary>What each stage grain on this silo holds at most (queued deposits, sequences, KV-cache bytes). Default: <see cref="Pipeline.StageLimits"/>' defaults.</summary>
    public Pipeline.StageLimits StageLimits { get; set; } = new();

    /// <summary>
    /// A folder of the cluster's certificates (<c>ftpcluster cluster certs</c> makes one): the silo uses <c>ca.pem</c> and
    /// <c>NODE.pem</c>/<c>NODE.key</c> for its <see cref="NodeName"/>, and every connection it accepts or opens is mutual
    /// TLS. Default null; the files may be named one by one instead (<see cref="TlsAuthorityFile"/> and the two after it).
    /// </summary>
    public string? TlsFolder { get; set; }

    /// <summary>The cluster CA's certificate(s), PEM (<c>--tls-ca</c>), when the TLS files are named one by one.</summary>
    public string? TlsAuthorityFile { get; set; }

    /// <summary>This silo's certificate (<c>--tls-cert</c>): PEM, or a <c>.pfx</c>/<c>.p12</c> with its key (password in FTPCLUSTER_TLS_PASSWORD).</summary>
    public string? TlsCertificateFile { get; set; }

    /// <summary>The PEM private key of <see cref="TlsCertificateFile"/> (<c>--tls-key</c>); none for a PKCS#12 certificate.</summary>
    public string? TlsKeyFile { get; set; }

    /// <summary>
    /// Lets a silo bound to an address other than loopback run without TLS: anyone who reaches its ports can then join the
    /// cluster and call its grains. Default false: such a silo refuses to start without TLS.
    /// </summary>
    public bool Insecure { get; set; }

    /// <summary>This silo's TLS files, from <see cref="TlsFolder"/> or the files named one by one; null when it runs without TLS.</summary>
    /// <exception cref="ArgumentException">The TLS options do not go together.</exception>
    public TlsFiles? GetTlsFiles() => TlsFiles.FromSwitches(TlsFolder, NodeName, TlsAuthorityFile, TlsCertificateFile, TlsKeyFile);

    /// <summary>Each of <see cref="Serve"/> as (model path, served name or null).</summary>
    public IEnumerable<(string Model, string? Name)> ServedModels() => Serve.Select(s =>
    {
        int equals = s.LastIndexOf('=');
        return equals >= 0 ? (s[..equals], s[(equals + 1)..]) : (s, (string?)null);
    });

    public static long DefaultMemoryBudgetBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value and its command-line switch.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(NodeName) || !NodeNamePattern().IsMatch(NodeName))
            throw new ArgumentException(
                $"node name (--node-name) '{NodeName}' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        CheckPort(SiloPort, "silo port (--silo-port)");
        CheckPort(GatewayPort, "gateway port (--gateway-port)");
        if (SiloPort == GatewayPort)
            throw new ArgumentException($"silo port and gateway port must differ, both are {SiloPort}");
        if (!IPAddress.TryParse(AdvertisedAddress, out _))
            throw new ArgumentException($"advertised address (--advertised-address) '{AdvertisedAddress}' is not an IP address");
        switch (Clustering)
        {
            case LocalhostClustering:
                if (!string.IsNullOrEmpty(RedisConnectionString))
                    throw new ArgumentException("a redis connection string (--redis) needs --clustering redis");
                if (PrimarySiloEndpoint is not null)
                    ParseEndpoint(PrimarySiloEndpoint, "primary silo endpoint (--primary)");
                break;
            case RedisClustering:
                if (string.IsNullOrWhiteSpace(RedisConnectionString))
                    throw new ArgumentException("--clustering redis needs a connection string (--redis or FTPCLUSTER_REDIS)");
                if (PrimarySiloEndpoint is not null)
                    throw new ArgumentException("a primary silo endpoint (--primary) only applies to --clustering localhost");
                break;
            default:
                throw new ArgumentException(
                    $"unknown clustering (--clustering) '{Clustering}' (expected {LocalhostClustering} or {RedisClustering})");
        }
        if (string.IsNullOrWhiteSpace(ClusterId))
            throw new ArgumentException("cluster id (--cluster-id) must not be empty");
        if (string.IsNullOrWhiteSpace(ServiceId))
            throw new ArgumentException("service id (--service-id) must not be empty");
        if (!ComputeDevices.IsKnown(Device))
            throw new ArgumentException($"unknown device (--device) '{Device}' (expected {ComputeDevices.Expected})");
        if (MemoryBudgetBytes <= 0)
            throw new ArgumentException($"memory budget (--memory-budget-mb) must be positive, got {MemoryBudgetBytes} bytes");
        if (Threads < 0)
            throw new ArgumentException($"threads (--threads) must be 0 (every core) or more, got {Threads}");
        if (!(Capacity > 0) || double.IsInfinity(Capacity))
            throw new ArgumentException($"capacity (--capacity) must be a positive number, got {Capacity.ToString(CultureInfo.InvariantCulture)}");
        if (HttpPort is { } httpPort)
        {
            CheckPort(httpPort, "HTTP port (--http-port)");
            if (httpPort == SiloPort || httpPort == GatewayPort)
                throw new ArgumentException($"the HTTP port (--http-port) must differ from the silo and gateway ports, all are {httpPort}");
        }
        if (ApiKeyFile is not null && HttpPort is null)
            throw new ArgumentException("an API key file (--api-key-file) needs an HTTP API (--http-port)");
        if (Metrics && HttpPort is null)
            throw new ArgumentException("the metrics endpoint (--metrics) is served on the HTTP API's port: it needs --http-port");
        foreach (var (model, name) in ServedModels())
            if (string.IsNullOrWhiteSpace(model) || name is { Length: 0 })
                throw new ArgumentException($"--serve takes MODEL or MODEL=NAME, got '{model}{(name is null ? "" : "=" + name)}'");
        if ((ServeTokenizer is not null || ServeRouters.Count > 0) && Serve.Count == 0)
            throw new ArgumentException("--serve-tokenizer and --serve-router describe the models of --serve: give --serve MODEL too");
        if (ServeStages < 1)
            throw new ArgumentException($"serve stages (--serve-stages) must be at least 1, got {ServeStages}");
        StageLimits.Validate();
        if (ModelRoots.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("a model root (--model-root) must not be empty");
        if (ParentProcessId is <= 0)
            throw new ArgumentException($"parent process id (--parent-pid) must be a positive process id, got {ParentProcessId}");
        // Secure by default, as Redis' protected mode: reachable from other machines means authenticated and encrypted.
        if (GetTlsFiles() is null && !Insecure && !IPAddress.IsLoopback(IPAddress.Parse(AdvertisedAddress)))
            throw new ArgumentException(
                $"refusing to listen on {AdvertisedAddress}, which is not a loopback address, without TLS: give --tls DIR (ftpcluster cluster certs makes one) " +
                "or --tls-ca, --tls-cert and --tls-key, or --insecure to let anyone who reaches its ports join the cluster and call it");
    }

    /// <summary>This silo's own silo endpoint, as other silos of a localhost cluster name it in --primary.</summary>
    public IPEndPoint GetSiloEndpoint() => new(IPAddress.Parse(AdvertisedAddress), SiloPort);

    /// <summary>The primary's endpoint for localhost clustering: the one configured, else this silo's own.</summary>
    public IPEndPoint GetPrimaryEndpoint() =>
        PrimarySiloEndpoint is null ? GetSiloEndpoint() : ParseEndpoint(PrimarySiloEndpoint, "primary silo endpoint (--primary)");

    /// <summary>
    /// The command line that starts a silo process with these options (what <c>FtpCluster.Silo</c> reads
    /// back), for parents that spawn silos: the embedded cluster and tests. The memory budget and the
    /// stage limits' byte counts travel in whole MiB (rounded down).
    /// </summary>
    public IReadOnlyList<string> ToCommandLine()
    {
        var args = new List<string>
        {
            "--node-name", NodeName,
            "--silo-port", SiloPort.ToString(CultureInfo.InvariantCulture),
            "--gateway-port", GatewayPort.ToString(CultureInfo.InvariantCulture),
            "--advertised-address", AdvertisedAddress,
            "--clustering", Clustering,
            "--cluster-id", ClusterId,
            "--service-id", ServiceId,
            "--device", Device,
            "--threads", Threads.ToString(CultureInfo.InvariantCulture),
        };
        // What the silo measures when it starts is left out, so that it does.
        if (!MemoryBudgetFromDevice) args.AddRange(["--memory-budget-mb", (MemoryBudgetBytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture)]);
        if (!MeasureCapacity) args.AddRange(["--capacity", Capacity.ToString("R", CultureInfo.InvariantCulture)]);
        var defaultLimits = new Pipeline.StageLimits();
        if (StageLimits.MaxSequences != defaultLimits.MaxSequences)
            args.AddRange(["--max-sequences", StageLimits.MaxSequences.ToString(CultureInfo.InvariantCulture)]);
        if (StageLimits.MaxKvCacheBytes != defaultLimits.MaxKvCacheBytes)
            args.AddRange(["--max-kv-cache-mb", (StageLimits.MaxKvCacheBytes >> 20).ToString(CultureInfo.InvariantCulture)]);
        if (StageLimits.MaxQueuedDeposits != defaultLimits.MaxQueuedDeposits)
            args.AddRange(["--max-queued-deposits", StageLimits.MaxQueuedDeposits.ToString(CultureInfo.InvariantCulture)]);
        if (StageLimits.MaxQueuedDepositBytes != defaultLimits.MaxQueuedDepositBytes)
            args.AddRange(["--max-queued-deposit-mb", (StageLimits.MaxQueuedDepositBytes >> 20).ToString(CultureInfo.InvariantCulture)]);
        if (PrimarySiloEndpoint is not null) args.AddRange(["--primary", PrimarySiloEndpoint]);
        if (RedisConnectionString is not null) args.AddRange(["--redis", RedisConnectionString]);
        if (HttpPort is { } http) args.AddRange(["--http-port", http.ToString(CultureInfo.InvariantCulture)]);
        if (ApiKeyFile is not null) args.AddRange(["--api-key-file", ApiKeyFile]);
        if (Metrics) args.Add("--metrics");
        if (BenchmarkGrains) args.Add("--benchmark-grains");
        foreach (string served in Serve) args.AddRange(["--serve", served]);
        if (Serve.Count > 0) args.AddRange(["--serve-stages", ServeStages.ToString(CultureInfo.InvariantCulture)]);
        if (ServeTokenizer is not null) args.AddRange(["--serve-tokenizer", ServeTokenizer]);
        if (ServeRouters.Count > 0) args.AddRange(["--serve-router", string.Join(",", ServeRouters)]);
        foreach (string root in ModelRoots) args.AddRange(["--model-root", root]);
        if (ParentProcessId is { } parent) args.AddRange(["--parent-pid", parent.ToString(CultureInfo.InvariantCulture)]);
        if (TlsFolder is not null) args.AddRange(["--tls", TlsFolder]);
        if (TlsAuthorityFile is not null) args.AddRange(["--tls-ca", TlsAuthorityFile]);
        if (TlsCertificateFile is not null) args.AddRange(["--tls-cert", TlsCertificateFile]);
        if (TlsKeyFile is not null) args.AddRange(["--tls-key", TlsKeyFile]);
        if (Insecure) args.Add("--insecure");
        return args;
    }

    private static void CheckPort(int port, string what)
    {
        if (port is < 1 or > 65535)
            throw new ArgumentException($"{what} must be 1-65535, got {port}");
    }

    private static IPEndPoint ParseEndpoint(string text, string what)
    {
        if (!IPEndPoint.TryParse(text, out var endpoint) || endpoint.Port == 0 || !text.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException($"{what} '{text}' is not IP:PORT (e.g. 127.0.0.1:11111)");
        return endpoint;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NodeNamePattern();
}
