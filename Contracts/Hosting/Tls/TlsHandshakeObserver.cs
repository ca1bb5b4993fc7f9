using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Orleans.Connections.Security;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Connection middleware placed just outside Orleans' TLS middleware: when a handshake fails, it logs one line naming the
/// peer and why, and records it in <see cref="TlsHandshakeFailures"/>. Orleans' middleware logs only "Authentication failed"
/// with the exception of the handshake, which does not say whose certificate was wrong or how, and the peer-certificate
/// callback it calls (<see cref="Judge"/>) is given no connection; the connection's attempt travels to that callback in an
/// async-local, which flows from here into the handshake that Orleans' middleware runs inside <c>next</c>. On a
/// connection this process opened, a peer that closes right after the handshake without answering is taken to have
/// refused this process's certificate (TLS 1.3 tells the connecting side no other way; <see cref="WatchAnswer"/>).
/// </summary>
internal sealed class TlsHandshakeObserver
{
    private static readonly AsyncLocal<Attempt?> CurrentAttempt = new();

    private readonly string _where;
    private readonly bool _accepting;
    private readonly ILogger _logger;
    private readonly TlsHandshakeFailures? _failures;
    private readonly X509Certificate2 _ownCertificate;

    /// <param name="where">What the connection is, as the log says it: "silo port", "gateway", ...</param>
    /// <param name="accepting">Whether this side accepted the connection (the TLS server) or opened it.</param>
    public TlsHandshakeObserver(string where, bool accepting, ILogger logger, TlsHandshakeFailures? failures, X509Certificate2 ownCertificate)
    {
        _where = where;
        _accepting = accepting;
        _logger = logger;
        _failures = failures;
        _ownCertificate = ownCertificate;
    }

    public ConnectionDelegate Wrap(ConnectionDelegate next) => async context =>
    {
        var attempt = new Attempt();
        CurrentAttempt.Value = attempt;
        if (!_accepting)
            context.ConnectionClosed.Register(() =>
            {
                if (attempt.HandshakeDone && !attempt.Answered)
                    Failed(context, $"the {_where} closed the connection right after the TLS handshake without a word: most likely it refused this process's certificate "
                        + $"'{_ownCertificate.Subject}' (issued by '{_ownCertificate.Issuer}', so its cluster has another CA)");
            });
        await next(context);
        // Orleans' middleware sets the protocol once the handshake succeeded; a connection it closed before has none.
        if (context.Features.Get<ITlsHandshakeFeature>() is { Protocol: not SslProtocols.None }) return;
        string reason = attempt.Refusal ?? (_accepting
            ? "the TLS handshake failed: the peer sent no certificate, does not speak TLS, refused this silo's certificate, or gave up"
            : $"the TLS handshake failed: the {_where} does not speak TLS, or refused this process's certificate '{_ownCertificate.Subject}'");
        Failed(context, reason);
    };

    /// <summary>
    /// Middleware placed inside Orleans' TLS middleware of a connection this process opens: the handshake is done when it
    /// runs, and it watches whether the peer then answers (<see cref="AnswerWatchingPipe"/>).
    /// </summary>
    public static ConnectionDelegate WatchAnswer(ConnectionDelegate next) => context =>
    {
        if (CurrentAttempt.Value is { } attempt)
        {
            attempt.HandshakeDone = true;
            context.Transport = new AnswerWatchingPipe(context.Transport, () => attempt.Answered = true);
        }
        return next(context);
    };

    private void Failed(ConnectionContext context, string reason)
    {
        Log(context.RemoteEndPoint, reason);
        _failures?.Record($"the {_where} at {context.RemoteEndPoint}", reason);
    }

    /// <summary>The peer-certificate check: <paramref name="validator"/>'s verdict, its reason kept for the connection's log line.</summary>
    public static bool Judge(ClusterCertificateValidator validator, X509Certificate2 certificate, ClusterCertificateRole role)
    {
        string? refusal = validator.Refusal(certificate, role);
        if (refusal is not null && CurrentAttempt.Value is { } attempt) attempt.Refusal = $"its {refusal}";
        return refusal is null;
    }

    private void Log(EndPoint? peer, string reason)
    {
        if (_accepting)
            _logger.LogWarning("TLS: refused a connection from {Peer} on the {Where}: {Reason}", peer, _where, reason);
        else
            _logger.LogWarning("TLS: cannot connect to {Peer} ({Where}): {Reason}", peer, _where, reason);
    }

    /// <summary>One connection's handshake, as far as the certificate check saw it.</summary>
    private sealed class Attempt
    {
        public string? Refusal { get; set; }

        public bool HandshakeDone { get; set; }

        public volatile bool Answered;
    }
}
