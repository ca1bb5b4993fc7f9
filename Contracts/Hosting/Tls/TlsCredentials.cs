using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// One process's TLS identity in the cluster, loaded and checked from its <see cref="TlsFiles"/>: the cluster's CA
/// certificate(s) it validates peers against, and its own certificate with the private key it proves it with.
/// </summary>
public sealed class TlsCredentials
{
    private TlsCredentials(TlsFiles files, X509Certificate2Collection authorities, X509Certificate2 certificate, ClusterCertificateRole role)
    {
        Files = files;
        Authorities = authorities;
        Certificate = certificate;
        Role = role;
        Validator = new ClusterCertificateValidator(authorities);
    }

    public TlsFiles Files { get; }

    /// <summary>The cluster CA's certificate(s): a peer's certificate must chain to one of them.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>This process's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>What this process's certificate is for.</summary>
    public ClusterCertificateRole Role { get; }

    public ClusterCertificateValidator Validator { get; }

    /// <summary>
    /// Reads <paramref name="files"/> and checks them as a peer will: the certificate chains to the CA file's certificates,
    /// is valid now, fits <paramref name="role"/>, and comes with its private key. A PKCS#12 file's password is read from
    /// <see cref="TlsFiles.PasswordVariable"/> (none when it is not set).
    /// </summary>
    /// <exception cref="TlsCredentialsException">A file is missing, unreadable, or fails a check; the message names it.</exception>
    public static TlsCredentials Load(TlsFiles files, ClusterCertificateRole role)
    {
        var authorities = LoadAuthorities(files.Authority);
        var certificate = files.PrivateKey is null ? LoadPkcs12(files.Certificate) : LoadPem(files.Certificate, files.PrivateKey);
        if (new ClusterCertificateValidator(authorities).Refusal(certificate, role) is { } refusal)
            throw new TlsCredentialsException($"TLS: {files.Certificate}: {refusal} (CA file {files.Authority})");
        return new TlsCredentials(files, authorities, certificate, role);
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(Existing(path, "CA certificate"));
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new TlsCredentialsException($"TLS: cannot read the CA certificate file {path}: {e.Message}", e);
        }
        if (authorities.Count == 0)
            throw new TlsCredentialsException($"TLS: the CA certificate file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        foreach (var authority in authorities)
        {
            if (authority.Extensions.OfType<X509BasicConstraintsExtension>().SingleOrDefault() is not { CertificateAuthority: true })
                throw new TlsCredentialsException($"TLS: {path}: '{authority.Subject}' is not a CA certificate (no CA basic constraint)");
            if (authority.NotAfter < DateTime.Now)
                throw new TlsCredentialsException($"TLS: {path}: the CA certificate '{authority.Subject}' expired on {authority.NotAfter.ToUniversalTime():u}");
        }
        return authorities;
    }

    private static X509Certificate2 LoadPem(string certificatePath, string keyPath)
    {
        Existing(certificatePath, "certificate");
        Existing(keyPath, "private key");
        try
        {
            return X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsCredentialsException(
                $"TLS: cannot load the certificate {certificatePath} with the key {keyPath} (PEM certificate and PEM private key of that certificate expected): {e.Message}", e);
        }
    }

    private static X509Certificate2 LoadPkcs12(string path)
    {
        Existing(path, "PKCS#12 certificate");
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, Environment.GetEnvironmentVariable(TlsFiles.PasswordVariable));
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new TlsCredentialsException(
                $"TLS: cannot read the PKCS#12 file {path} (is its password in {TlsFiles.PasswordVariable}?): {e.Message}", e);
        }
        if (!certificate.HasPrivateKey)
            throw new TlsCredentialsException($"TLS: the PKCS#12 file {path} holds no private key for its certificate '{certificate.Subject}'");
        return certificate;
    }

    private static string Existing(string path, string what) =>
        File.Exists(path) ? path : throw new TlsCredentialsException($"TLS: the {what} file {path} does not exist");
}
