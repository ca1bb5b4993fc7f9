using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Makes a cluster's certificates with ECDSA P-256 keys: a CA, and certificates it issues to nodes (silos) and to clients.
/// A node's certificate names the node in its subject and as a DNS name, though peers check the chain and key usage, not
/// names (<see cref="ClusterCertificateValidator"/>).
/// </summary>
public static class ClusterCertificateIssuer
{
    // Issued a little in the past, so that a peer whose clock runs a few minutes behind accepts a certificate made just now.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>A new cluster CA valid for <paramref name="validity"/>, its subject made unique so that messages tell clusters apart.</summary>
    public static X509Certificate2 CreateAuthority(TimeSpan validity)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=FtpCluster CA {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}, O=FtpCluster",
            key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now - ClockSkew, now + validity);
    }

    /// <summary>
    /// A certificate for <paramref name="name"/> (a node name, or "client") issued by <paramref name="authority"/> (which must
    /// hold its private key), valid for <paramref name="validity"/> but never past the CA itself.
    /// </summary>
    public static X509Certificate2 Issue(X509Certificate2 authority, string name, ClusterCertificateRole role, TimeSpan validity)
    {
        if (!authority.HasPrivateKey) throw new ArgumentException($"the CA certificate '{authority.Subject}' comes without its private key", nameof(authority));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // Node names are letters, digits, '.', '_' and '-' (ClusterCertificateFolder checks them): nothing to escape.
        var request = new CertificateRequest($"CN={name}, O=FtpCluster", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        var usages = new OidCollection();
        foreach (var usage in role.Usages()) usages.Add(usage);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        if (role == ClusterCertificateRole.Node)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(name);
            request.CertificateExtensions.Add(names.Build());
        }
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var now = DateTimeOffset.UtcNow;
        var notAfter = now + validity < authority.NotAfter ? now + validity : new DateTimeOffset(authority.NotAfter);
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive serial number, as RFC 5280 asks
        using var issued = request.Create(authority, now - ClockSkew, notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }
}
