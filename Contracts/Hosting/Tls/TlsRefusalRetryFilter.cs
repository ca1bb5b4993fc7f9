using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// How a TLS client retries its first connection to the cluster: as Orleans' default does (15 tries, waiting 1.5 s longer
/// each time, about three minutes in all, for gateways that are still starting), except that a TLS handshake that failed
/// ends the tries at once: a certificate refused now is refused again, and the caller is better told why within seconds.
/// </summary>
internal sealed class TlsRefusalRetryFilter(TlsHandshakeFailures failures) : IClientConnectionRetryFilter
{
    private const int MaxRetries = 15;
    private static readonly TimeSpan DelayStep = TimeSpan.FromMilliseconds(1500);
    private int _retries;

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        if (failures.Describe().Count > 0 || _retries >= MaxRetries || cancellationToken.IsCancellationRequested) return false;
        if (exception is not (OrleansMessageRejectionException or ConnectionFailedException)) return false;
        _retries++;
        await Task.Delay(DelayStep * _retries, cancellationToken);
        return true;
    }
}
