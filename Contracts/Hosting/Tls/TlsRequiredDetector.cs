using FtpCluster.Grains.Hosting.Transport;
using Microsoft.AspNetCore.Connections;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Connection middleware of a client without TLS: tells a gateway that requires TLS by its silence. Orleans' client speaks
/// first and a gateway without TLS answers with its own preamble; a gateway with TLS reads the client's preamble as a
/// broken TLS handshake and closes the connection without sending a byte. Such a close is recorded in
/// <see cref="TlsHandshakeFailures"/>, which ends the client's connection attempts (<see cref="TlsRefusalRetryFilter"/>)
/// with a message that says to give the client its certificate, instead of three minutes of retries that end without one.
/// </summary>
internal static class TlsRequiredDetector
{
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(TlsHandshakeFailures failures) => next => context =>
    {
        // At the close, not when next returns: Orleans' client holds a connection it failed to start a while longer.
        context.ConnectionClosed.Register(() =>
        {
            if (context.Features.Get<IReceivedBytesFeature>() is { ReceivedBytes: 0 })
                failures.Record($"the gateway at {context.RemoteEndPoint}",
                    "it closed the connection without answering a word: it requires TLS, and this client has no certificate " +
                    "(give --tls DIR, or --tls-ca, --tls-cert and --tls-key)");
        });
        return next(context);
    };
}
