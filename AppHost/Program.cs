using System.Globalization;

// A local dev cluster: N silo processes on loopback with fixed ports; silo "a" is the primary the others join
// through (or, with a Redis connection string, Redis holds the membership and the state). Each silo is its own
// one-silo project resource with explicit arguments: Aspire's replicas would give every replica the same arguments,
// and its Orleans integration's development clustering would make each replica a cluster of its own.
// Every silo serves the HTTP API, its health checks and its metrics (Prometheus text at /metrics; OTLP to the
// dashboard, which Aspire configures) on a port of its own (silo a's is the one to use); silo a
// deploys the model over all the silos once they have joined, so a silo is healthy (ready) once it has joined and
// the deployment is loaded.
var builder = DistributedApplication.CreateBuilder(args);

// Each setting from the command line (--Silos 3) or as an Aspire parameter (Parameters:silos, e.g. in user secrets).
string? Setting(string name) => builder.Configuration[name] ?? builder.Configuration[$"Parameters:{name.ToLowerInvariant()}"];
int IntSetting(string name, int defaultValue) =>
    Setting(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : defaultValue;

int silos = IntSetting("Silos", 3);
if (silos is < 1 or > 26)
    throw new ArgumentException($"Silos must be 1-26 (one node name per letter), got {silos}");
int firstSiloPort = IntSetting("FirstSiloPort", 11111);
int firstGatewayPort = IntSetting("FirstGatewayPort", 30000);
int httpPort = IntSetting("HttpPort", 8080);
string device = Setting("Device") ?? "cpu";
// As EmbeddedCluster.PlaceOnDevices: "cuda" puts the silos on a GPU each; one numbered GPU for them all would have each
// silo count its whole free memory as its budget.
if (silos > 1 && device.StartsWith("cuda:", StringComparison.Ordinal))
    throw new ArgumentException($"Device {device} for {silos} silos: each would take its whole free memory as its budget; give cuda, which puts each on a GPU of its own");

// What the cluster serves: the model is a parameter resource of the dashboard too.
var model = builder.AddParameter("model-served", Setting("Model") ?? "HuggingFaceTB/SmolLM2-135M-Instruct");
string? tokenizer = Setting("Tokenizer");
string? router = Setting("Router");
string? redis = Setting("Redis");
// Every silo may hold a stage of what silo a serves, so every silo takes the folders of its local files as model roots
// (a repo id needs none: it resolves into the Hugging Face cache, every silo's default root). MODEL[=NAME]: the path
// before '='.
string servedModel = Setting("Model") ?? "";
string[] modelRoots = [.. new[] { servedModel.Split('=')[0], tokenizer, router }
    .Where(path => !string.IsNullOrEmpty(path) && (File.Exists(path) || Directory.Exists(path)))
    .Select(path => Directory.Exists(path) ? Path.GetFullPath(path!) : Path.GetDirectoryName(Path.GetFullPath(path!))!)
    .Distinct()];

IResourceBuilder<ProjectResource>? primary = null;
for (int i = 0; i < silos; i++)
{
    string node = ((char)('a' + i)).ToString();
    int port = httpPort + i;
    var silo = builder.AddProject<Projects.FtpCluster_Silo>($"silo-{node}")
        .WithArgs(
            "--node-name", node,
            "--silo-port", (firstSiloPort + i).ToString(CultureInfo.InvariantCulture),
            "--gateway-port", (firstGatewayPort + i).ToString(CultureInfo.InvariantCulture),
            "--device", device == "cuda" ? $"cuda:{i}" : device,
            "--http-port", port.ToString(CultureInfo.InvariantCulture),
            "--metrics")
        .WithHttpEndpoint(port: port, targetPort: port, name: "http", isProxied: false)
        .WithHttpHealthCheck("/health/ready", endpointName: "http");
    if (modelRoots.Length > 0)
        silo.WithArgs([.. modelRoots.SelectMany(root => new[] { "--model-root", root })]);
    if (redis is not null)
        silo.WithArgs("--clustering", "redis", "--redis", builder.AddParameter($"redis-{node}", redis, secret: true));
    else if (i > 0)
        silo.WithArgs("--primary", $"127.0.0.1:{firstSiloPort.ToString(CultureInfo.InvariantCulture)}");

    if (i == 0)
    {
        silo.WithArgs("--serve", model, "--serve-stages", silos.ToString(CultureInfo.InvariantCulture));
        if (tokenizer is not null) silo.WithArgs("--serve-tokenizer", tokenizer);
        if (router is not null) silo.WithArgs("--serve-router", router);
        primary = silo;
    }
    else
    {
        // The others join through the primary: it must be up first (not ready: it is ready once they have joined).
        silo.WaitForStart(primary!);
    }
}

builder.Build().Run();
