namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Where one process's TLS credentials are: the cluster CA's certificate (or several, during a CA rotation), which every
/// peer's certificate must chain to, and this process's own certificate with its private key, either as two PEM files or
/// as one PKCS#12 file (<c>.pfx</c>/<c>.p12</c>, which holds the key; its password in <see cref="PasswordVariable"/>).
/// </summary>
/// <param name="Authority">The cluster CA's certificate(s), PEM.</param>
/// <param name="Certificate">This process's certificate: PEM, or PKCS#12 with its key.</param>
/// <param name="PrivateKey">The PEM private key of <paramref name="Certificate"/>; null for a PKCS#12 certificate.</param>
public sealed record TlsFiles(string Authority, string Certificate, string? PrivateKey)
{
    /// <summary>The cluster CA's certificate in a folder <c>ftpcluster cluster certs</c> made.</summary>
    public const string AuthorityFileName = "ca.pem";

    /// <summary>The cluster CA's private key in such a folder: only <c>cluster certs</c> reads it, to issue more certificates.</summary>
    public const string AuthorityKeyFileName = "ca.key";

    /// <summary>The name of the clients' certificate in such a folder (<c>client.pem</c>, <c>client.key</c>).</summary>
    public const string ClientName = "client";

    /// <summary>The environment variable that holds a PKCS#12 certificate's password (never a command-line switch: those show in ps).</summary>
    public const string PasswordVariable = "FTPCLUSTER_TLS_PASSWORD";

    /// <summary>The files of <paramref name="name"/> (a node name, or <see cref="ClientName"/>) in <paramref name="folder"/>.</summary>
    public static TlsFiles InFolder(string folder, string name) =>
        new(Path.Combine(folder, AuthorityFileName), Path.Combine(folder, name + ".pem"), Path.Combine(folder, name + ".key"));

    /// <summary>Whether <paramref name="path"/> names a PKCS#12 file by its extension.</summary>
    public static bool IsPkcs12(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".pfx" or ".p12";

    /// <summary>
    /// The files that the switches <c>--tls DIR</c> or <c>--tls-ca</c>, <c>--tls-cert</c>, <c>--tls-key</c> name (silos and
    /// clients take the same ones); null when none is given. <paramref name="name"/> is whose certificate a folder holds.
    /// </summary>
    /// <exception cref="ArgumentException">The switches do not go together; the message names them.</exception>
    public static TlsFiles? FromSwitches(string? folder, string name, string? authority, string? certificate, string? privateKey)
    {
        bool oneByOne = authority is not null || certificate is not null || privateKey is not null;
        if (folder is not null)
        {
            if (oneByOne)
                throw new ArgumentException("--tls DIR names every TLS file; --tls-ca, --tls-cert and --tls-key name them one by one: give one or the other");
            return InFolder(folder, name);
        }
        if (!oneByOne) return null;
        if (authority is null || certificate is null)
            throw new ArgumentException("--tls-ca FILE and --tls-cert FILE go together (with --tls-key FILE unless the certificate is a .pfx or .p12)");
        if (IsPkcs12(certificate))
        {
            if (privateKey is not null)
                throw new ArgumentException($"--tls-key does not apply to {certificate}: a PKCS#12 file holds its own key (its password in {PasswordVariable})");
            return new TlsFiles(authority, certificate, null);
        }
        if (privateKey is null)
            throw new ArgumentException($"--tls-cert {certificate} needs --tls-key FILE, its PEM private key (or give a .pfx/.p12 that holds both)");
        return new TlsFiles(authority, certificate, privateKey);
    }

    /// <summary>The same files with absolute paths, for a process started in another working directory.</summary>
    public TlsFiles ToFullPaths() =>
        new(Path.GetFullPath(Authority), Path.GetFullPath(Certificate), PrivateKey is null ? null : Path.GetFullPath(PrivateKey));
}
