using FtpCluster.Api;
using FtpCluster.Grains.Hosting;
using FtpCluster.Silo;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args is ["--help" or "-h"])
{
    Console.WriteLine(SiloCommandLine.Usage);
    return 0;
}

FtpClusterSiloOptions options;
try
{
    options = SiloCommandLine.Parse(args, Environment.GetEnvironmentVariables());
}
catch (SiloUsageException e)
{
    Console.Error.WriteLine($"ftpcluster-silo: {e.Message}");
    return 2;
}

IHost host;
try
{
    host = BuildHost(options);
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"ftpcluster-silo: node {options.NodeName}: {e.Message}");
    return 2;
}
using var _ = host;
if (options.Insecure && options.GetTlsFiles() is null && !System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(options.AdvertisedAddress)))
    Console.Error.WriteLine($"ftpcluster-silo: node {options.NodeName}: --insecure: listening on {options.AdvertisedAddress} without TLS; anyone who reaches its ports can join the cluster and call it");
try
{
    await host.StartAsync();
}
catch (Exception e)
{
    var cause = e is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : e;
    Console.Error.WriteLine($"ftpcluster-silo: node {options.NodeName} failed to start: {cause.Message}");
    return 1;
}

var local = host.Services.GetRequiredService<ILocalSiloDetails>();
Console.WriteLine(new SiloReadyLine(options.NodeName, local.SiloAddress.Endpoint, local.GatewayAddress!.Endpoint, Environment.ProcessId));

var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
if (await ParentProcess.WaitUntilStoppingOrOrphanedAsync(options.ParentProcessId, stopping))
{
    // The silos of a parent that is gone have no one to serve, and their siblings are going too: a
    // graceful leave would wait on silos that no longer answer, so it gets a short bound.
    Console.Error.WriteLine($"ftpcluster-silo: node {options.NodeName}: parent process {options.ParentProcessId} is gone; stopping");
    using var bound = new CancellationTokenSource(ParentProcess.OrphanShutdownTimeout);
    await host.StopAsync(bound.Token);
    return 0;
}
await host.StopAsync();
return 0;

// A silo with an HTTP API is a web application (Kestrel beside the silo, one process); without one, a plain host.
static IHost BuildHost(FtpClusterSiloOptions options)
{
    if (options.HttpPort is not { } httpPort)
    {
        // The switches are ours (SiloCommandLine); the host gets no args so it does not read them a second time.
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });
        ConfigureSilo(builder, options);
        return builder.Build();
    }
    var web = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
    ConfigureSilo(web, options);
    web.AddFtpClusterHttpApi(new HttpApiOptions { Port = httpPort, ApiKeyFile = options.ApiKeyFile, MetricsEndpoint = options.Metrics });
    var app = web.Build();
    app.MapFtpClusterHttpApi();
    return app;
}

static void ConfigureSilo(IHostApplicationBuilder builder, FtpClusterSiloOptions options)
{
    builder.Logging.ClearProviders();
    builder.Logging.AddSimpleConsole(console =>
    {
        console.SingleLine = true;
        console.TimestampFormat = "HH:mm:ss.fff ";
    });
    // Orleans reports every membership and placement step at Information (Polly, under it, every placement
    // retry attempt; ASP.NET Core every request); their warnings are what an operator needs.
    builder.Logging.AddFilter("Orleans", LogLevel.Warning);
    builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
    builder.Logging.AddFilter("Polly", LogLevel.Warning);
    // Orleans' TLS middleware logs a failed handshake as a warning with its stack trace; FtpCluster's own line names the
    // peer and the reason instead (ClusterTls.LogCategory).
    builder.Logging.AddFilter("Orleans.Connections.Security", LogLevel.Error);
    builder.AddFtpClusterTelemetry(options.NodeName, servesMetrics: options.Metrics);
    builder.UseOrleans(silo => silo.AddFtpCluster(options));
}
