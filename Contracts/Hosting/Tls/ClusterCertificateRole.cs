using System.Security.Cryptography;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// What a certificate of the cluster is for, told by its extended key usage: a node's certificate serves (its silo and
/// gateway ports) and connects (to other silos); a client's only connects. A silo port therefore takes node certificates
/// only, so a client's certificate cannot join the cluster as a silo.
/// </summary>
public enum ClusterCertificateRole
{
    /// <summary>A silo: server and client authentication.</summary>
    Node,

    /// <summary>A client of the gateways: client authentication only.</summary>
    Client,
}

/// <summary>The key usages behind each <see cref="ClusterCertificateRole"/>.</summary>
public static class ClusterCertificateRoles
{
    /// <summary>TLS server authentication (RFC 5280).</summary>
    public static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    /// <summary>TLS client authentication (RFC 5280).</summary>
    public static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    /// <summary>The extended key usages a certificate of <paramref name="role"/> carries, every one of which a peer checks.</summary>
    public static IReadOnlyList<Oid> Usages(this ClusterCertificateRole role) => role switch
    {
        ClusterCertificateRole.Node => [ServerAuthentication, ClientAuthentication],
        ClusterCertificateRole.Client => [ClientAuthentication],
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "not a cluster certificate role"),
    };

    /// <summary>"node" or "client", as messages say it.</summary>
    public static string Word(this ClusterCertificateRole role) => role == ClusterCertificateRole.Node ? "node" : "client";
}
