using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// A folder of a cluster's certificates, as <c>ftpcluster cluster certs</c> writes it and <c>--tls DIR</c> reads it:
/// <c>ca.pem</c> and <c>ca.key</c> (the CA), <c>NODE.pem</c> and <c>NODE.key</c> for each node, <c>client.pem</c> and
/// <c>client.key</c> for clients. PEM throughout; private keys (PKCS#8) are written readable by their owner only (0600).
/// </summary>
public static partial class ClusterCertificateFolder
{
    /// <summary>How long the CA is valid at least: ten years, as cluster tools commonly make theirs; the certificates it issues live shorter.</summary>
    public static readonly TimeSpan MinimumAuthorityValidity = TimeSpan.FromDays(3650);

    /// <summary>
    /// The files <see cref="Write"/> writes for <paramref name="nodes"/>, in the order it writes them: the CA's certificate
    /// and key when it makes the CA, only its certificate when it issues from a CA it was given.
    /// </summary>
    public static IReadOnlyList<string> FileNames(IReadOnlyList<string> nodes, bool newAuthority = true) =>
        [TlsFiles.AuthorityFileName, .. newAuthority ? new[] { TlsFiles.AuthorityKeyFileName } : [],
         .. nodes.SelectMany(n => new[] { n + ".pem", n + ".key" }), TlsFiles.ClientName + ".pem", TlsFiles.ClientName + ".key"];

    /// <summary>The CA of a folder this class wrote, with its private key, to issue more certificates from.</summary>
    /// <exception cref="TlsCredentialsException">The folder lacks <c>ca.pem</c> or <c>ca.key</c>, or they are not a CA and its key.</exception>
    public static X509Certificate2 ReadAuthority(string folder)
    {
        string certificate = Path.Combine(folder, TlsFiles.AuthorityFileName), key = Path.Combine(folder, TlsFiles.AuthorityKeyFileName);
        foreach (string path in new[] { certificate, key })
            if (!File.Exists(path)) throw new TlsCredentialsException($"TLS: the CA file {path} does not exist (ftpcluster cluster certs writes ca.pem and ca.key)");
        X509Certificate2 authority;
        try
        {
            authority = X509Certificate2.CreateFromPemFile(certificate, key);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsCredentialsException($"TLS: cannot load the CA certificate {certificate} with its key {key}: {e.Message}", e);
        }
        if (authority.Extensions.OfType<X509BasicConstraintsExtension>().SingleOrDefault() is not { CertificateAuthority: true })
            throw new TlsCredentialsException($"TLS: {certificate}: '{authority.Subject}' is not a CA certificate (no CA basic constraint)");
        if (authority.NotAfter < DateTime.Now)
            throw new TlsCredentialsException($"TLS: {certificate}: the CA certificate '{authority.Subject}' expired on {authority.NotAfter.ToUniversalTime():u}");
        return authority;
    }

    /// <summary>Whether <paramref name="folder"/> is missing or holds nothing: the case where <c>cluster up --tls DIR</c> makes the certificates.</summary>
    public static bool IsMissingOrEmpty(string folder) => !Directory.Exists(folder) || !Directory.EnumerateFileSystemEntries(folder).Any();

    /// <summary>
    /// Makes certificates for <paramref name="nodes"/> and for clients in <paramref name="folder"/> (created when missing),
    /// valid for <paramref name="validity"/>, issued by <paramref name="authority"/> (with its key; its certificate is
    /// written beside them) or, when it is null, by a new cluster CA valid for at least <see cref="MinimumAuthorityValidity"/>,
    /// whose key is written too. Returns the paths written.
    /// </summary>
    /// <exception cref="ArgumentException">A node name is not valid, or repeated.</exception>
    /// <exception cref="IOException">Files it would write exist and <paramref name="overwrite"/> is false; the message lists them.</exception>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<string> nodes, TimeSpan validity, bool overwrite, X509Certificate2? authority = null)
    {
        CheckNodeNames(nodes);
        if (validity <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(validity), validity, "certificates must be valid for some time");
        string authorityPath = Path.Combine(folder, TlsFiles.AuthorityFileName);
        // Issuing into the CA's own folder leaves its ca.pem as it is.
        bool keepAuthorityFile = authority is not null && File.Exists(authorityPath)
            && X509Certificate2.CreateFromPem(File.ReadAllText(authorityPath)).Thumbprint == authority.Thumbprint;
        var paths = FileNames(nodes, newAuthority: authority is null).Select(f => Path.Combine(folder, f))
            .Where(p => !(keepAuthorityFile && p == authorityPath)).ToArray();
        var existing = paths.Where(File.Exists).ToArray();
        if (existing.Length > 0 && !overwrite)
            throw new IOException($"{folder} already holds {string.Join(", ", existing.Select(Path.GetFileName))}, which this would overwrite (give --force to replace them)");
        Directory.CreateDirectory(folder);

        using var created = authority is null ? ClusterCertificateIssuer.CreateAuthority(validity > MinimumAuthorityValidity ? validity : MinimumAuthorityValidity) : null;
        if (created is not null) WritePair(folder, Path.GetFileNameWithoutExtension(TlsFiles.AuthorityFileName), created);
        else if (!keepAuthorityFile) File.WriteAllText(authorityPath, authority!.ExportCertificatePem() + "\n");
        authority ??= created!;
        foreach (string node in nodes)
        {
            using var certificate = ClusterCertificateIssuer.Issue(authority, node, ClusterCertificateRole.Node, validity);
            WritePair(folder, node, certificate);
        }
        using var client = ClusterCertificateIssuer.Issue(authority, TlsFiles.ClientName, ClusterCertificateRole.Client, validity);
        WritePair(folder, TlsFiles.ClientName, client);
        return paths;
    }

    /// <exception cref="ArgumentException">A name is not a valid node name, names a file the folder holds for another purpose, or repeats.</exception>
    public static void CheckNodeNames(IReadOnlyList<string> nodes)
    {
        if (nodes.Count == 0) throw new ArgumentException("name at least one node");
        foreach (string node in nodes)
        {
            if (!NodeNamePattern().IsMatch(node))
                throw new ArgumentException($"node name '{node}' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (as --node-name takes)");
            if (node is "ca" or TlsFiles.ClientName)
                throw new ArgumentException($"node name '{node}' would overwrite the {(node == "ca" ? "CA's" : "clients'")} files ({node}.pem, {node}.key): name the node otherwise");
        }
        if (nodes.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new ArgumentException($"node '{repeated.Key}' is named twice");
    }

    private static void WritePair(string folder, string name, X509Certificate2 certificate)
    {
        File.WriteAllText(Path.Combine(folder, name + ".pem"), certificate.ExportCertificatePem() + "\n");
        using var key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"the certificate '{certificate.Subject}' has no ECDSA private key");
        string keyPath = Path.Combine(folder, name + ".key");
        // Deleted first: a file that exists keeps its mode when opened, and the key must never be readable by others, not even for a moment.
        File.Delete(keyPath);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var writer = new StreamWriter(new FileStream(keyPath, options));
        writer.Write(key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    // The silo's node-name rule (FtpClusterSiloOptions): a certificate is made for a name a silo can take.
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NodeNamePattern();
}
