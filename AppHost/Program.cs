using System.Globalization;
using Microsoft.Extensions.Configuration;

// A local dev cluster: N silo processes on loopback with localhost clustering and fixed ports; silo "a"
// is the primary the others join through. Each silo is its own one-silo project resource with explicit
// arguments: Aspire's replicas would give every replica the same arguments, and its Orleans integration's
// development clustering would make each replica a cluster of its own.
var builder = DistributedApplication.CreateBuilder(args);

int silos = builder.Configuration.GetValue("Silos", 3);
if (silos is < 1 or > 26)
    throw new ArgumentException($"Silos must be 1-26 (one node name per letter), got {silos}");
int firstSiloPort = builder.Configuration.GetValue("FirstSiloPort", 11111);
int firstGatewayPort = builder.Configuration.GetValue("FirstGatewayPort", 30000);
string device = builder.Configuration.GetValue("Device", "cpu")!;

for (int i = 0; i < silos; i++)
{
    string node = ((char)('a' + i)).ToString();
    var silo = builder.AddProject<Projects.FtpCluster_Silo>($"silo-{node}")
        .WithArgs(
            "--node-name", node,
            "--silo-port", (firstSiloPort + i).ToString(CultureInfo.InvariantCulture),
            "--gateway-port", (firstGatewayPort + i).ToString(CultureInfo.InvariantCulture),
            "--device", device);
    if (i > 0)
        silo.WithArgs("--primary", $"127.0.0.1:{firstSiloPort.ToString(CultureInfo.InvariantCulture)}");
}

builder.Build().Run();
