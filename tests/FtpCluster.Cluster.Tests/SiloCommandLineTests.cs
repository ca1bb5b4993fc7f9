using System.Collections;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Silo;
using Microsoft.Extensions.Hosting;

namespace FtpCluster.Cluster.Tests;

public sealed class SiloCommandLineTests
{
    private static readonly Hashtable NoEnvironment = [];

    private static FtpClusterSiloOptions Parse(string commandLine, IDictionary? environment = null) =>
        SiloCommandLine.Parse(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries), environment ?? NoEnvironment);

    [Fact]
    public void No_arguments_give_the_documented_defaults()
    {
        var options = Parse("");

        Assert.Equal(Environment.MachineName, options.NodeName);
        Assert.Equal(11111, options.SiloPort);
        Assert.Equal(30000, options.GatewayPort);
        Assert.Equal("127.0.0.1", options.AdvertisedAddress);
        Assert.Equal("localhost", options.Clustering);
        Assert.Null(options.PrimarySiloEndpoint);
        Assert.Equal("127.0.0.1:11111", options.GetPrimaryEndpoint().ToString());
        Assert.Equal("ftpcluster", options.ClusterId);
        Assert.Equal("ftpcluster", options.ServiceId);
        Assert.Equal("cpu", options.Device);
        Assert.Equal(FtpClusterSiloOptions.DefaultMemoryBudgetBytes(), options.MemoryBudgetBytes);
        Assert.True(options.MemoryBudgetBytes > 0);
        Assert.Equal(0, options.Threads);
        Assert.True(options.MeasureCapacity, "without --capacity the silo measures its own");
        Assert.False(options.MemoryBudgetFromDevice, "the cpu device's budget is the host's");
    }

    [Fact]
    public void Cuda_without_a_budget_takes_it_from_the_device_and_a_given_capacity_is_not_measured()
    {
        var options = Parse("--device cuda --capacity 40");
        Assert.True(options.MemoryBudgetFromDevice);
        Assert.False(options.MeasureCapacity);
        Assert.Equal(40, options.Capacity);
        Assert.False(Parse("--device cuda --memory-budget-mb 1024").MemoryBudgetFromDevice);
        Assert.True(Parse("--device cuda:3").MemoryBudgetFromDevice);

        // A parent leaves out what its silos measure, so that they do.
        var args = options.ToCommandLine().ToArray();
        Assert.DoesNotContain("--memory-budget-mb", args);
        var read = SiloCommandLine.Parse(args, NoEnvironment);
        Assert.True(read.MemoryBudgetFromDevice);
        Assert.Equal(40, read.Capacity);
    }

    [Fact]
    public void Every_switch_sets_its_option()
    {
        var options = Parse("--node-name b --silo-port 11112 --gateway-port 30001 --advertised-address 10.0.0.2 "
            + "--clustering localhost --primary 10.0.0.1:11111 --cluster-id c1 --service-id s1 --device ilgpu-cpu "
            + "--memory-budget-mb 4096 --threads 3 --capacity 2.5 --tls /etc/ftpcluster/tls");

        Assert.Equal("b", options.NodeName);
        Assert.Equal(11112, options.SiloPort);
        Assert.Equal(30001, options.GatewayPort);
        Assert.Equal("10.0.0.2", options.AdvertisedAddress);
        Assert.Equal("10.0.0.1:11111", options.GetPrimaryEndpoint().ToString());
        Assert.Equal("c1", options.ClusterId);
        Assert.Equal("s1", options.ServiceId);
        Assert.Equal("ilgpu-cpu", options.Device);
        Assert.Equal(4096L * 1024 * 1024, options.MemoryBudgetBytes);
        Assert.Equal(3, options.Threads);
        Assert.Equal(2.5, options.Capacity);
        Assert.False(options.MeasureCapacity);
        Assert.Equal(TlsFiles.InFolder("/etc/ftpcluster/tls", "b"), options.GetTlsFiles());
    }

    [Fact]
    public void The_HTTP_API_and_served_models_take_their_switches_and_serve_repeats()
    {
        var options = Parse("--http-port 8080 --api-key-file /k/keys --serve /m/a.bin --serve=/m/b.bin=bee --serve-stages 2");

        Assert.Equal(8080, options.HttpPort);
        Assert.Equal("/k/keys", options.ApiKeyFile);
        Assert.Equal([("/m/a.bin", (string?)null), ("/m/b.bin", "bee")], options.ServedModels());
        Assert.Equal(2, options.ServeStages);
        var fromEnvironment = Parse("--http-port 8080", new Hashtable { ["FTPCLUSTER_SERVE"] = "/m/a.bin; /m/c=cee" });
        Assert.Equal([("/m/a.bin", (string?)null), ("/m/c", "cee")], fromEnvironment.ServedModels());
    }

    [Fact]
    public void Metrics_is_a_switch_alone_or_a_true_false_variable()
    {
        Assert.True(Parse("--http-port 8080 --metrics").Metrics);
        Assert.True(Parse("--metrics --http-port 8080").Metrics);
        Assert.False(Parse("--http-port 8080 --metrics=false").Metrics);
        Assert.False(Parse("--http-port 8080").Metrics);
        Assert.True(Parse("--http-port 8080", new Hashtable { ["FTPCLUSTER_METRICS"] = "true" }).Metrics);
        Assert.False(Parse("--http-port 8080 --metrics=false", new Hashtable { ["FTPCLUSTER_METRICS"] = "true" }).Metrics);
    }

    [Fact]
    public void A_silo_on_an_address_of_its_own_joins_a_primary_on_another()
    {
        var options = Parse("--node-name b --advertised-address 10.231.7.11 --primary 10.231.7.10:11111 --insecure");

        Assert.Equal("10.231.7.11:11111", options.GetSiloEndpoint().ToString());
        Assert.Equal("10.231.7.10:11111", options.GetPrimaryEndpoint().ToString());
        var fromEnvironment = Parse("", new Hashtable { ["FTPCLUSTER_ADVERTISED_ADDRESS"] = "10.231.7.12", ["FTPCLUSTER_TLS"] = "/tls" });
        Assert.Equal("10.231.7.12:11111", fromEnvironment.GetSiloEndpoint().ToString());
        Assert.Equal("10.231.7.12:11111", fromEnvironment.GetPrimaryEndpoint().ToString());
    }

    [Fact]
    public void Redis_clustering_takes_its_connection_string()
    {
        var options = Parse("--clustering redis --redis=10.0.0.9:6379,password=secret");

        Assert.Equal("redis", options.Clustering);
        Assert.Equal("10.0.0.9:6379,password=secret", options.RedisConnectionString);
    }

    [Fact]
    public void Environment_variables_set_options_and_the_command_line_overrides_them()
    {
        var environment = new Hashtable
        {
            ["FTPCLUSTER_NODE_NAME"] = "from-env",
            ["FTPCLUSTER_SILO_PORT"] = "12000",
            ["FTPCLUSTER_MEMORY_BUDGET_MB"] = "100",
            ["FTPCLUSTER_CLUSTERING"] = "redis",
            ["FTPCLUSTER_REDIS"] = "localhost:6379",
        };

        var options = Parse("--silo-port 12001", environment);

        Assert.Equal("from-env", options.NodeName);
        Assert.Equal(12001, options.SiloPort);
        Assert.Equal(100L * 1024 * 1024, options.MemoryBudgetBytes);
        Assert.Equal("redis", options.Clustering);
        Assert.Equal("localhost:6379", options.RedisConnectionString);
        Assert.Equal("FTPCLUSTER_MEMORY_BUDGET_MB", SiloCommandLine.EnvironmentVariable("--memory-budget-mb"));
    }

    [Fact]
    public void Model_roots_repeat_on_the_command_line_and_come_from_a_path_list_in_the_environment()
    {
        Assert.Empty(Parse("").ModelRoots);
        Assert.Equal(["/srv/a", "/srv/b"], Parse("--model-root /srv/a --model-root=/srv/b").ModelRoots);
        Assert.Equal("FTPCLUSTER_MODEL_ROOTS", SiloCommandLine.EnvironmentVariable("--model-root"));
        var environment = new Hashtable { ["FTPCLUSTER_MODEL_ROOTS"] = "/srv/a:/srv/b" };
        Assert.Equal(["/srv/a", "/srv/b"], Parse("", environment).ModelRoots);
        // The command line wins over the environment.
        Assert.Equal(["/srv/c"], Parse("--model-root /srv/c", environment).ModelRoots);
        var error = Assert.Throws<SiloUsageException>(() => Parse("--model-root"));
        Assert.Equal("--model-root needs a value (DIR)", error.Message);
    }

    [Fact]
    public void Stage_limits_take_their_switches_and_refuse_values_they_cannot_hold()
    {
        var limits = Parse("--max-sequences 64 --max-kv-cache-mb 2048 --max-queued-deposits 32 --max-queued-deposit-mb 128").StageLimits;

        Assert.Equal(64, limits.MaxSequences);
        Assert.Equal(2048L << 20, limits.MaxKvCacheBytes);
        Assert.Equal(32, limits.MaxQueuedDeposits);
        Assert.Equal(128L << 20, limits.MaxQueuedDepositBytes);
        Assert.Equal(100, Parse("", new Hashtable { ["FTPCLUSTER_MAX_SEQUENCES"] = "100" }).StageLimits.MaxSequences);
        Assert.Equal("MaxSequences (--max-sequences) must be at least 1, got 0", Assert.Throws<SiloUsageException>(() => Parse("--max-sequences 0")).Message);
        Assert.Equal("MaxQueuedDepositBytes (--max-queued-deposit-mb) must be at least 1 byte, got 0",
            Assert.Throws<SiloUsageException>(() => Parse("--max-queued-deposit-mb 0")).Message);
        Assert.Equal("--max-kv-cache-mb must be a whole number of MiB from 0 to 8796093022207, got -1",
            Assert.Throws<SiloUsageException>(() => Parse("--max-kv-cache-mb -1")).Message);
        Assert.Equal("--max-queued-deposits: 'many' is not a whole number", Assert.Throws<SiloUsageException>(() => Parse("--max-queued-deposits many")).Message);
    }

    [Fact]
    public void The_command_line_a_parent_writes_reads_back_as_the_same_options()
    {
        var written = new FtpClusterSiloOptions
        {
            NodeName = "node-7", SiloPort = 4001, GatewayPort = 4002, AdvertisedAddress = "10.231.7.11", PrimarySiloEndpoint = "10.231.7.10:4000",
            ClusterId = "c", ServiceId = "s", Device = "ilgpu-cpu", MemoryBudgetBytes = 3L << 30, Threads = 2, Capacity = 0.1,
            ParentProcessId = 4242, HttpPort = 8080, ApiKeyFile = "/etc/ftpcluster/keys", Metrics = true, BenchmarkGrains = true, Serve = ["/m/a.bin", "/m/b=bee"], ServeStages = 2,
            ServeTokenizer = "/m/tok.json", ServeRouters = ["/r/a.json", "/r/b.json"], ModelRoots = ["/srv/models", "/srv/more"],
            TlsAuthorityFile = "/tls/ca.pem", TlsCertificateFile = "/tls/node-7.pem", TlsKeyFile = "/tls/node-7.key", Insecure = true,
            StageLimits = new() { MaxSequences = 64, MaxKvCacheBytes = 2L << 30, MaxQueuedDeposits = 16, MaxQueuedDepositBytes = 64L << 20 },
        };

        var read = SiloCommandLine.Parse([.. written.ToCommandLine()], NoEnvironment);

        Assert.Equivalent(written, read, strict: true);
    }

    [Fact]
    public void TLS_files_come_from_a_folder_or_one_by_one_and_a_PKCS12_certificate_holds_its_key()
    {
        Assert.Null(Parse("--node-name a").GetTlsFiles());
        Assert.Equal(new TlsFiles("/t/ca.pem", "/t/a.pem", "/t/a.key"), Parse("--node-name a", new Hashtable { ["FTPCLUSTER_TLS"] = "/t" }).GetTlsFiles());
        Assert.Equal(new TlsFiles("/p/ca.pem", "/p/me.crt", "/p/me.key"), Parse("--tls-ca /p/ca.pem --tls-cert /p/me.crt --tls-key /p/me.key").GetTlsFiles());
        Assert.Equal(new TlsFiles("/p/ca.pem", "/p/me.pfx", null), Parse("--tls-ca /p/ca.pem --tls-cert /p/me.pfx").GetTlsFiles());
    }

    [Fact]
    public void A_silo_on_an_address_other_than_loopback_refuses_to_run_without_TLS_unless_told_insecure()
    {
        var error = Assert.Throws<SiloUsageException>(() => Parse("--advertised-address 10.231.7.11"));
        Assert.Equal("refusing to listen on 10.231.7.11, which is not a loopback address, without TLS: give --tls DIR (ftpcluster cluster certs makes one) "
            + "or --tls-ca, --tls-cert and --tls-key, or --insecure to let anyone who reaches its ports join the cluster and call it", error.Message);
        Assert.Throws<SiloUsageException>(() => Parse("--advertised-address 0.0.0.0"));
        Assert.True(Parse("--advertised-address 10.231.7.11 --insecure").Insecure);
        Assert.NotNull(Parse("--advertised-address 10.231.7.11 --tls /t").GetTlsFiles());
        Assert.Equal("::1", Parse("--advertised-address ::1").AdvertisedAddress);
    }

    [Theory]
    [InlineData("--tls /t --tls-ca /t/ca.pem", "--tls DIR names every TLS file; --tls-ca, --tls-cert and --tls-key name them one by one: give one or the other")]
    [InlineData("--tls-cert /t/a.pem --tls-key /t/a.key", "--tls-ca FILE and --tls-cert FILE go together (with --tls-key FILE unless the certificate is a .pfx or .p12)")]
    [InlineData("--tls-ca /t/ca.pem --tls-cert /t/a.pem", "--tls-cert /t/a.pem needs --tls-key FILE, its PEM private key (or give a .pfx/.p12 that holds both)")]
    [InlineData("--tls-ca /t/ca.pem --tls-cert /t/a.p12 --tls-key /t/a.key", "--tls-key does not apply to /t/a.p12: a PKCS#12 file holds its own key (its password in FTPCLUSTER_TLS_PASSWORD)")]
    public void TLS_switches_that_do_not_go_together_are_refused_naming_them(string commandLine, string message)
    {
        Assert.Equal(message, Assert.Throws<SiloUsageException>(() => Parse(commandLine)).Message);
    }

    [Theory]
    [InlineData("--clustering foo", "unknown clustering (--clustering) 'foo' (expected localhost or redis)")]
    [InlineData("--clustering redis", "--clustering redis needs a connection string (--redis or FTPCLUSTER_REDIS)")]
    [InlineData("--clustering redis --redis=", "--clustering redis needs a connection string (--redis or FTPCLUSTER_REDIS)")]
    [InlineData("--clustering redis --redis r:6379 --primary 127.0.0.1:11111", "a primary silo endpoint (--primary) only applies to --clustering localhost")]
    [InlineData("--redis r:6379", "a redis connection string (--redis) needs --clustering redis")]
    [InlineData("--silo-port 0", "silo port (--silo-port) must be 1-65535, got 0")]
    [InlineData("--silo-port 65536", "silo port (--silo-port) must be 1-65535, got 65536")]
    [InlineData("--gateway-port -1", "gateway port (--gateway-port) must be 1-65535, got -1")]
    [InlineData("--gateway-port 99999", "gateway port (--gateway-port) must be 1-65535, got 99999")]
    [InlineData("--silo-port eleven", "--silo-port: 'eleven' is not a whole number")]
    [InlineData("--silo-port 5000 --gateway-port 5000", "silo port and gateway port must differ, both are 5000")]
    [InlineData("--advertised-address my-host", "advertised address (--advertised-address) 'my-host' is not an IP address")]
    [InlineData("--primary 127.0.0.1", "primary silo endpoint (--primary) '127.0.0.1' is not IP:PORT (e.g. 127.0.0.1:11111)")]
    [InlineData("--primary host:11111", "primary silo endpoint (--primary) 'host:11111' is not IP:PORT (e.g. 127.0.0.1:11111)")]
    [InlineData("--node-name a@b", "node name (--node-name) 'a@b' is not valid")]
    [InlineData("--node-name=", "node name (--node-name) '' is not valid")]
    [InlineData("--cluster-id=", "cluster id (--cluster-id) must not be empty")]
    [InlineData("--service-id=", "service id (--service-id) must not be empty")]
    [InlineData("--device tpu", "unknown device (--device) 'tpu' (expected cpu, ilgpu-cpu, cuda, or cuda:N for the CUDA device numbered N)")]
    [InlineData("--device cuda:-1", "unknown device (--device) 'cuda:-1' (expected cpu, ilgpu-cpu, cuda, or cuda:N for the CUDA device numbered N)")]
    [InlineData("--memory-budget-mb 0", "--memory-budget-mb must be a positive number of MiB, got 0")]
    [InlineData("--memory-budget-mb -5", "--memory-budget-mb must be a positive number of MiB, got -5")]
    [InlineData("--memory-budget-mb 4GB", "--memory-budget-mb: '4GB' is not a whole number")]
    [InlineData("--threads -1", "threads (--threads) must be 0 (every core) or more, got -1")]
    [InlineData("--capacity 0", "capacity (--capacity) must be a positive number, got 0")]
    [InlineData("--capacity NaN", "capacity (--capacity) must be a positive number, got NaN")]
    [InlineData("--capacity fast", "--capacity: 'fast' is not a number")]
    [InlineData("--silo-prot 11111", "unknown option --silo-prot (known: --node-name --silo-port")]
    [InlineData("--node-name", "--node-name needs a value (NAME)")]
    [InlineData("--node-name --silo-port 1", "--node-name needs a value (NAME)")]
    [InlineData("a --node-name b", "unexpected argument 'a' (switches take the form --name VALUE)")]
    [InlineData("--http-port 70000", "HTTP port (--http-port) must be 1-65535, got 70000")]
    [InlineData("--http-port 11111", "the HTTP port (--http-port) must differ from the silo and gateway ports, all are 11111")]
    [InlineData("--api-key-file keys", "an API key file (--api-key-file) needs an HTTP API (--http-port)")]
    [InlineData("--metrics", "the metrics endpoint (--metrics) is served on the HTTP API's port: it needs --http-port")]
    [InlineData("--http-port 8080 --metrics=yes", "--metrics: 'yes' is not true or false")]
    [InlineData("--serve =name", "--serve takes MODEL or MODEL=NAME, got '=name'")]
    [InlineData("--serve m.bin --serve-stages 0", "serve stages (--serve-stages) must be at least 1, got 0")]
    [InlineData("--serve-router r.json", "--serve-tokenizer and --serve-router describe the models of --serve: give --serve MODEL too")]
    public void A_bad_value_is_refused_with_a_message_naming_it(string commandLine, string message)
    {
        var error = Assert.Throws<SiloUsageException>(() => Parse(commandLine));

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_environment_value_is_refused_like_a_bad_switch()
    {
        var error = Assert.Throws<SiloUsageException>(() => Parse("", new Hashtable { ["FTPCLUSTER_CLUSTERING"] = "zookeeper" }));

        Assert.Equal("unknown clustering (--clustering) 'zookeeper' (expected localhost or redis)", error.Message);
    }

    [Fact]
    public void The_builder_extension_refuses_invalid_options_as_the_command_line_does()
    {
        var options = new FtpClusterSiloOptions { Clustering = "redis" };
        var host = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());

        var error = Assert.Throws<ArgumentException>(() => host.UseOrleans(silo => silo.AddFtpCluster(options)));

        Assert.Equal("--clustering redis needs a connection string (--redis or FTPCLUSTER_REDIS)", error.Message);
    }
}
