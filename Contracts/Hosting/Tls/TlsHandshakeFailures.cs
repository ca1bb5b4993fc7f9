using System.Collections.Concurrent;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// The TLS handshakes this process failed, by peer, the latest reason for each: Orleans' TLS middleware closes a
/// connection whose handshake fails and reports only that it closed, so a client that cannot connect reads from here why.
/// </summary>
public sealed class TlsHandshakeFailures
{
    private readonly ConcurrentDictionary<string, string> _reasons = new(StringComparer.Ordinal);

    /// <summary>The failures so far, one "PEER: REASON" each; empty when every handshake succeeded.</summary>
    public IReadOnlyList<string> Describe() => [.. _reasons.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => $"{r.Key}: {r.Value}")];

    /// <param name="peer">Who the peer is, as a message names it: "the gateway at 10.0.0.2:30000".</param>
    internal void Record(string peer, string reason) => _reasons[peer] = reason;
}
