using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Decides whether a certificate is one the cluster issued: it chains to one of the cluster's CA certificates alone (a
/// custom root, never the machine's trust store, and no downloads of missing issuers), it is valid now, and its key
/// usages fit the role it is presented in. Host names are not checked: silos are reached by IP address, and what
/// identifies a peer is that the cluster's CA issued its certificate for that role.
/// </summary>
public sealed class ClusterCertificateValidator
{
    private readonly X509Certificate2Collection _authorities;

    /// <param name="authorities">The cluster CA's certificate(s).</param>
    public ClusterCertificateValidator(X509Certificate2Collection authorities)
    {
        if (authorities.Count == 0) throw new ArgumentException("the cluster needs at least one CA certificate", nameof(authorities));
        _authorities = authorities;
    }

    /// <summary>Why <paramref name="certificate"/> is not one the cluster issued for <paramref name="role"/>; null when it is.</summary>
    public string? Refusal(X509Certificate2 certificate, ClusterCertificateRole role)
    {
        string who = $"certificate '{certificate.Subject}' (issued by '{certificate.Issuer}')";
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        bool built = chain.Build(certificate);
        var statuses = chain.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s);
        if (statuses.HasFlag(X509ChainStatusFlags.NotTimeValid))
        {
            var now = DateTime.Now;
            return certificate.NotAfter < now
                ? $"{who} expired on {Utc(certificate.NotAfter)}"
                : certificate.NotBefore > now
                    ? $"{who} is not valid before {Utc(certificate.NotBefore)}"
                    : $"{who}: its CA certificate is not valid now";
        }
        if (!built || chain.ChainElements.Count < 2)
            return $"{who} is not issued by the cluster CA ({string.Join(", ", _authorities.Select(a => $"'{a.Subject}'"))})"
                + (statuses == X509ChainStatusFlags.NoError ? "" : $": {statuses}");
        var root = chain.ChainElements[^1].Certificate;
        if (!_authorities.Any(a => a.RawDataMemory.Span.SequenceEqual(root.RawDataMemory.Span)))
            return $"{who} chains to '{root.Subject}', which is not the cluster CA";

        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SingleOrDefault()?.EnhancedKeyUsages
            .Cast<System.Security.Cryptography.Oid>().Select(o => o.Value).ToHashSet();
        var missing = role.Usages().Where(u => usages is null || !usages.Contains(u.Value)).Select(u => u.FriendlyName).ToArray();
        if (missing.Length > 0)
            return $"{who} is not a {role.Word()} certificate of the cluster: it lacks the key usage {string.Join(" and ", missing)}";
        if (certificate.Extensions.OfType<X509KeyUsageExtension>().SingleOrDefault() is { } keyUsage
            && !keyUsage.KeyUsages.HasFlag(X509KeyUsageFlags.DigitalSignature))
            return $"{who} may not sign (its key usage is {keyUsage.KeyUsages}), which a TLS handshake needs";
        return null;
    }

    private static string Utc(DateTime local) => local.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
}
