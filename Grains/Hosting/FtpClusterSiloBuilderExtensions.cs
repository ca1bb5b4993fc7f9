using System.Net;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Wire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Hosting;
using Orleans.Runtime.GrainDirectory;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// Makes an Orleans silo an FtpCluster silo. A silo process and a silo hosted in-process (embedded
/// cluster, tests) call the same method, so they are the same silo.
/// </summary>
public static class FtpClusterSiloBuilderExtensions
{
    /// <summary>The grain storage that holds each deployment's request and current plan.</summary>
    public const string DeploymentStorage = "ftpcluster-deployments";

    /// <summary>The grain storage that holds batch jobs: their records, lines and results.</summary>
    public const string JobStorage = "ftpcluster-jobs";

    /// <summary>
    /// The shortest reminder period: a job's reminder brings it back within this long of losing its silo (Orleans'
    /// default minimum of a minute would leave a job idle that long).
    /// </summary>
    public static readonly TimeSpan MinimumReminderPeriod = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Configures identity, endpoints and clustering from <paramref name="options"/> and the message size
    /// limit from <see cref="MessageLimits"/>, publishes this silo's node name, device, memory budget and
    /// capacity as silo metadata, opens the compute device when the silo starts, registers
    /// node-pinned placement, and puts FtpCluster's TCP transport in the place of Orleans' socket transport
    /// (<see cref="TcpTransportRegistration"/>), with mutual TLS over it when the options name TLS files
    /// (<see cref="ClusterTlsSiloRegistration"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An option is invalid (see <see cref="FtpClusterSiloOptions.Validate"/>).</exception>
    /// <exception cref="TlsCredentialsException">A TLS file is missing, unreadable, expired or not the cluster's; the message names it.</exception>
    /// <exception cref="InvalidOperationException">Orleans' transport is not registered as expected, so it cannot be replaced.</exception>
    public static ISiloBuilder AddFtpCluster(this ISiloBuilder builder, FtpClusterSiloOptions options)
    {
        options.Validate();
        builder.Configure<ClusterOptions>(cluster =>
        {
            cluster.ClusterId = options.ClusterId;
            cluster.ServiceId = options.ServiceId;
        });
        builder.Configure<SiloOptions>(silo => silo.SiloName = options.NodeName);
        // Not listenOnAnyHostAddress: the silo binds the advertised address alone, so silos on one host
        // (each in its own network namespace, or on addresses of their own) keep to their own addresses.
        // Stated rather than left to Orleans' default: deployments check their packet limit against it.
        builder.Configure<SiloMessagingOptions>(messaging => messaging.MaxMessageBodySize = MessageLimits.OrleansMaxMessageBodyBytes);
        builder.ConfigureEndpoints(IPAddress.Parse(options.AdvertisedAddress), options.SiloPort, options.GatewayPort);
        // Large reads: Orleans' own transport receives 4 KiB at a time (docs/benchmarks.md, activation transport).
        builder.UseFtpClusterTcpTransport();
        if (options.GetTlsFiles() is { } tls) builder.UseFtpClusterTls(TlsCredentials.Load(tls, ClusterCertificateRole.Node));
        // A grain call continues its caller's trace (the HTTP request's, a run's); the spans exist only while
        // something listens (FtpClusterTelemetryHosting registers the listener when traces are exported).
        builder.AddActivityPropagation();
        // Deployments (each coordinator's request and plan) are kept where the membership is: with redis
        // clustering they outlive any silo; in development they live in memory on one of the silos.
        // Jobs likewise, and the reminders that bring an unfinished job back after its silo is lost.
        if (options.Clustering == FtpClusterSiloOptions.RedisClustering)
        {
            var redisOptions = StackExchange.Redis.ConfigurationOptions.Parse(options.RedisConnectionString!);
            // A silo cut off from Redis learns whether it was declared dead (and then stops itself) only once it reads
            // the membership again: retry each second after a link comes back, not after StackExchange.Redis' default
            // back-off of up to 10 s.
            redisOptions.ReconnectRetryPolicy = new StackExchange.Redis.LinearRetry(1000);
            builder.UseRedisClustering(clustering => clustering.ConfigurationOptions = redisOptions);
            builder.AddRedisGrainStorage(DeploymentStorage, redis => redis.ConfigurationOptions = redisOptions);
            builder.AddRedisGrainStorage(JobStorage, redis => redis.ConfigurationOptions = redisOptions);
            builder.UseRedisReminderService(redis => redis.ConfigurationOptions = redisOptions);
            builder.AddRedisGrainDirectory(StatefulGrainDirectory.Name, redis => redis.ConfigurationOptions = redisOptions);
            builder.Services.AddSingleton<IGrainDirectoryResolver, StatefulGrainDirectory>();
        }
        else
        {
            builder.UseDevelopmentClustering(options.PrimarySiloEndpoint is null ? null : options.GetPrimaryEndpoint());
            builder.AddMemoryGrainStorage(DeploymentStorage);
            builder.AddMemoryGrainStorage(JobStorage);
            builder.UseInMemoryReminderService();
        }
        builder.Configure<ReminderOptions>(reminders => reminders.MinimumReminderPeriod = MinimumReminderPeriod);

        // The planner reads capacity and memory budget from the metadata, so what the silo measures is measured first.
        SiloDeviceMeasurement.Apply(options);
        builder.UseSiloMetadata(FtpClusterNode.ToMetadata(options));
        builder.ConfigureServices(services =>
        {
            services.AddSingleton(options);
            // Resolved when first used, not at start: the Hugging Face cache (the default root) need not exist yet.
            services.AddSingleton(_ => ModelRoots.For(options));
            services.AddSingleton<FtpClusterSiloDevice>();
            services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<FtpClusterSiloDevice>());
            services.AddSingleton<FtpClusterNodeDirectory>();
            services.AddSingleton<LoadedStages>();
            services.Configure<ExceptionSerializationOptions>(exceptions => exceptions.SupportedNamespacePrefixes.Add(ClusterFailures.OrleansRetriesNamespace));
            services.AddPlacementDirector<NodePinnedPlacement, NodePinnedPlacementDirector>();
            services.AddHostedService<ServedModelsService>();
        });
        return builder;
    }
}
