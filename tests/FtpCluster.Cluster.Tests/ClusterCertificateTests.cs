using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FtpCluster.Grains.Hosting.Tls;

namespace FtpCluster.Cluster.Tests;

/// <summary>What <c>ftpcluster cluster certs</c> writes, and how the credentials it makes are loaded and checked.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes
public sealed class ClusterCertificateTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ftp-certs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Made(string name, params string[] nodes)
    {
        string folder = Path.Combine(_folder, name);
        ClusterCertificateFolder.Write(folder, nodes, TimeSpan.FromDays(30), overwrite: false);
        return folder;
    }

    [Fact]
    public async Task Cluster_certs_writes_a_CA_a_certificate_per_node_and_one_for_clients_with_owner_only_keys()
    {
        string folder = Path.Combine(_folder, "out");
        var (code, stdout, stderr) = await CommandLineProcess.RunAsync("cluster", "certs", "--out", folder, "--nodes", "a,b,gpu-1", "--days", "30");

        Assert.True(code == 0, stderr);
        Assert.Contains("certificates for a, b, gpu-1 and clients, valid 30 days, issued by a new cluster CA", stdout, StringComparison.Ordinal);
        Assert.Equal(["a.key", "a.pem", "b.key", "b.pem", "ca.key", "ca.pem", "client.key", "client.pem", "gpu-1.key", "gpu-1.pem"],
            Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string key in Directory.GetFiles(folder, "*.key"))
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        foreach (string certificate in Directory.GetFiles(folder, "*.pem"))
            Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(certificate) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite));

        var authority = X509Certificate2.CreateFromPemFile(Path.Combine(folder, "ca.pem"), Path.Combine(folder, "ca.key"));
        Assert.True(authority.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.Equal(256, authority.GetECDsaPublicKey()!.KeySize);
        Assert.True(authority.NotAfter > DateTime.Now.AddDays(3000), "the CA lives ten years");
        foreach (string node in new[] { "a", "b", "gpu-1" })
        {
            var credentials = TlsCredentials.Load(TlsFiles.InFolder(folder, node), ClusterCertificateRole.Node);
            var certificate = credentials.Certificate;
            Assert.Equal($"CN={node}, O=FtpCluster", certificate.Subject);
            Assert.Equal(authority.Subject, certificate.Issuer);
            Assert.Equal(node, certificate.GetNameInfo(X509NameType.DnsName, forIssuer: false));
            Assert.Equal(256, certificate.GetECDsaPublicKey()!.KeySize);
            Assert.InRange(certificate.NotAfter, DateTime.Now.AddDays(29), DateTime.Now.AddDays(31));
        }
        var client = TlsCredentials.Load(TlsFiles.InFolder(folder, "client"), ClusterCertificateRole.Client);
        Assert.Null(client.Validator.Refusal(client.Certificate, ClusterCertificateRole.Client));
        // A client's certificate cannot serve, so it cannot join as a silo.
        Assert.Contains("lacks the key usage Server Authentication", client.Validator.Refusal(client.Certificate, ClusterCertificateRole.Node), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cluster_certs_refuses_to_overwrite_naming_the_files_unless_forced()
    {
        string folder = Made("existing", "a");
        string before = await File.ReadAllTextAsync(Path.Combine(folder, "ca.pem"));

        var (code, _, stderr) = await CommandLineProcess.RunAsync("cluster", "certs", "--out", folder, "--nodes", "a,b");
        Assert.Equal(1, code);
        Assert.Equal($"ftpcluster: {folder} already holds ca.pem, ca.key, a.pem, a.key, client.pem, client.key, which this would overwrite (give --force to replace them)",
            stderr.Trim());
        Assert.Equal(before, await File.ReadAllTextAsync(Path.Combine(folder, "ca.pem")));

        var forced = await CommandLineProcess.RunAsync("cluster", "certs", "--out", folder, "--nodes", "a,b", "--force");
        Assert.True(forced.Code == 0, forced.Err);
        Assert.NotEqual(before, await File.ReadAllTextAsync(Path.Combine(folder, "ca.pem")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(folder, "a.key")));
    }

    [Fact]
    public async Task Cluster_certs_issues_from_an_existing_CA_for_a_node_added_later()
    {
        string folder = Made("grown", "a");
        var authority = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(folder, "ca.pem")));

        var (code, stdout, stderr) = await CommandLineProcess.RunAsync("cluster", "certs", "--out", folder, "--ca", folder, "--nodes", "d", "--force");
        Assert.True(code == 0, stderr);
        Assert.Contains($"issued by the CA '{authority.Subject}'", stdout, StringComparison.Ordinal);
        var added = TlsCredentials.Load(TlsFiles.InFolder(folder, "d"), ClusterCertificateRole.Node);
        var first = TlsCredentials.Load(TlsFiles.InFolder(folder, "a"), ClusterCertificateRole.Node);
        Assert.Null(first.Validator.Refusal(added.Certificate, ClusterCertificateRole.Node));
        Assert.Equal(authority.Thumbprint, added.Authorities.Single().Thumbprint);

        // Into another folder: the CA's certificate goes with them, its key stays where it is.
        string elsewhere = Path.Combine(_folder, "elsewhere");
        var copied = await CommandLineProcess.RunAsync("cluster", "certs", "--out", elsewhere, "--ca", folder, "--nodes", "e");
        Assert.True(copied.Code == 0, copied.Err);
        Assert.Equal(["ca.pem", "client.key", "client.pem", "e.key", "e.pem"], Directory.GetFiles(elsewhere).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Null(first.Validator.Refusal(TlsCredentials.Load(TlsFiles.InFolder(elsewhere, "e"), ClusterCertificateRole.Node).Certificate, ClusterCertificateRole.Node));
    }

    [Theory]
    [InlineData("a,client", "--nodes: node name 'client' would overwrite the clients' files (client.pem, client.key): name the node otherwise")]
    [InlineData("a,b/c", "--nodes: node name 'b/c' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (as --node-name takes)")]
    [InlineData("a,a", "--nodes: node 'a' is named twice")]
    public async Task Cluster_certs_refuses_node_names_a_silo_cannot_take(string nodes, string message)
    {
        var (code, _, stderr) = await CommandLineProcess.RunAsync("cluster", "certs", "--out", Path.Combine(_folder, "bad"), "--nodes", nodes);

        Assert.Equal(2, code);
        Assert.Equal($"ftpcluster: {message}", stderr.Trim());
        Assert.False(Directory.Exists(Path.Combine(_folder, "bad")));
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        string folder = Made("missing", "a");
        File.Delete(Path.Combine(folder, "a.key"));

        var error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(TlsFiles.InFolder(folder, "a"), ClusterCertificateRole.Node));
        Assert.Equal($"TLS: the private key file {Path.Combine(folder, "a.key")} does not exist", error.Message);
        error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(TlsFiles.InFolder(folder, "z"), ClusterCertificateRole.Node));
        Assert.Equal($"TLS: the certificate file {Path.Combine(folder, "z.pem")} does not exist", error.Message);
    }

    [Fact]
    public void A_certificate_of_another_cluster_or_the_wrong_key_or_a_client_certificate_on_a_node_is_refused_naming_the_file()
    {
        string ours = Made("ours", "a");
        string theirs = Made("theirs", "a");

        var foreign = new TlsFiles(Path.Combine(ours, "ca.pem"), Path.Combine(theirs, "a.pem"), Path.Combine(theirs, "a.key"));
        var error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(foreign, ClusterCertificateRole.Node));
        Assert.StartsWith($"TLS: {foreign.Certificate}: certificate 'CN=a, O=FtpCluster' (issued by '", error.Message, StringComparison.Ordinal);
        Assert.Contains("is not issued by the cluster CA", error.Message, StringComparison.Ordinal);

        var wrongKey = new TlsFiles(Path.Combine(ours, "ca.pem"), Path.Combine(ours, "a.pem"), Path.Combine(theirs, "a.key"));
        error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(wrongKey, ClusterCertificateRole.Node));
        Assert.StartsWith($"TLS: cannot load the certificate {wrongKey.Certificate} with the key {wrongKey.PrivateKey}", error.Message, StringComparison.Ordinal);

        error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(TlsFiles.InFolder(ours, "client"), ClusterCertificateRole.Node));
        Assert.Contains("is not a node certificate of the cluster: it lacks the key usage Server Authentication", error.Message, StringComparison.Ordinal);

        error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(new TlsFiles(Path.Combine(ours, "a.pem"), Path.Combine(ours, "a.pem"), Path.Combine(ours, "a.key")), ClusterCertificateRole.Node));
        Assert.Equal($"TLS: {Path.Combine(ours, "a.pem")}: 'CN=a, O=FtpCluster' is not a CA certificate (no CA basic constraint)", error.Message);
    }

    [Fact]
    public void An_expired_certificate_is_refused_with_its_date()
    {
        string folder = Made("expired", "a");
        var authority = X509Certificate2.CreateFromPemFile(Path.Combine(folder, "ca.pem"), Path.Combine(folder, "ca.key"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=a, O=FtpCluster", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ClusterCertificateRoles.ServerAuthentication, ClusterCertificateRoles.ClientAuthentication], false));
        // The CA was made valid from five minutes ago (for peers whose clocks lag): a minute of that is long gone now.
        var notBefore = new DateTimeOffset(authority.NotBefore.ToUniversalTime());
        var notAfter = notBefore.AddMinutes(1);
        using var expired = request.Create(authority, notBefore, notAfter, [1, 2, 3]);
        File.WriteAllText(Path.Combine(folder, "a.pem"), expired.ExportCertificatePem());
        File.WriteAllText(Path.Combine(folder, "a.key"), key.ExportPkcs8PrivateKeyPem());

        var error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(TlsFiles.InFolder(folder, "a"), ClusterCertificateRole.Node));
        Assert.Equal($"TLS: {Path.Combine(folder, "a.pem")}: certificate 'CN=a, O=FtpCluster' (issued by '{authority.Subject}') expired on {notAfter.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC (CA file {Path.Combine(folder, "ca.pem")})",
            error.Message);
    }

    [Fact]
    public void A_PKCS12_certificate_is_read_with_the_password_from_the_environment()
    {
        string folder = Made("pfx", "a");
        var node = X509Certificate2.CreateFromPemFile(Path.Combine(folder, "a.pem"), Path.Combine(folder, "a.key"));
        string pfx = Path.Combine(folder, "a.pfx");
        File.WriteAllBytes(pfx, node.Export(X509ContentType.Pkcs12, "s3cret"));
        var files = new TlsFiles(Path.Combine(folder, "ca.pem"), pfx, null);
        string? saved = Environment.GetEnvironmentVariable(TlsFiles.PasswordVariable);
        try
        {
            Environment.SetEnvironmentVariable(TlsFiles.PasswordVariable, "s3cret");
            Assert.Equal(node.Thumbprint, TlsCredentials.Load(files, ClusterCertificateRole.Node).Certificate.Thumbprint);
            Environment.SetEnvironmentVariable(TlsFiles.PasswordVariable, "wrong");
            var error = Assert.Throws<TlsCredentialsException>(() => TlsCredentials.Load(files, ClusterCertificateRole.Node));
            Assert.StartsWith($"TLS: cannot read the PKCS#12 file {pfx} (is its password in FTPCLUSTER_TLS_PASSWORD?)", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(TlsFiles.PasswordVariable, saved);
        }
    }
}
