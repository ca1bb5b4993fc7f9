using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>Binds <see cref="TcpConnectionListener"/>s: a silo's silo port and its gateway port.</summary>
internal sealed class TcpConnectionListenerFactory(IOptions<TcpTransportOptions> options, TcpTransportStatistics statistics, ILoggerFactory loggerFactory)
    : IConnectionListenerFactory
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(TcpTransportRegistration.LogCategory);

    /// <exception cref="AddressInUseException">Another socket holds the endpoint.</exception>
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
            throw new ArgumentException($"the TCP transport listens on IP endpoints, got {endpoint?.GetType().Name ?? "null"}", nameof(endpoint));
        return ValueTask.FromResult<IConnectionListener>(TcpConnectionListener.Bind(ip, options.Value, statistics, _logger));
    }
}

/// <summary>
/// A listening TCP socket whose accepted connections are <see cref="TcpConnection"/>s. Unbinding or disposing it
/// closes the listening socket, and a pending <see cref="AcceptAsync"/> then answers null, which tells Orleans'
/// accept loop to end; connections already accepted are Orleans' to close. A connection past
/// <see cref="TcpTransportOptions.MaxConnectionsPerAddress"/> or <see cref="TcpTransportOptions.MaxConnections"/> is
/// closed (reset) as soon as it is accepted, before Orleans sees it, and logged.
/// </summary>
internal sealed class TcpConnectionListener : IConnectionListener
{
    private readonly Socket _socket;
    private readonly TcpTransportOptions _options;
    private readonly TcpTransportStatistics _statistics;
    private readonly ILogger _logger;
    private readonly ConnectionAdmission _admission;
    private long _refused;
    private long _lastRefusalLogged = long.MinValue / 2; // far enough back that the first refusal is logged

    private TcpConnectionListener(Socket socket, TcpTransportOptions options, TcpTransportStatistics statistics, ILogger logger)
    {
        _socket = socket;
        _options = options;
        _statistics = statistics;
        _logger = logger;
        _admission = new ConnectionAdmission(options.MaxConnectionsPerAddress, options.MaxConnections);
        EndPoint = socket.LocalEndPoint!;
    }

    /// <summary>The bound endpoint (with the port the system chose, if port 0 was asked for).</summary>
    public EndPoint EndPoint { get; }

    /// <summary>Connections accepted and still open.</summary>
    public int OpenConnections => _admission.Total;

    /// <summary>Connections closed at once for being past a connection limit, since the listener was bound.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refused);

    /// <summary>How often a listener under a flood logs its refusals (each log line counts those since the last).</summary>
    private static readonly TimeSpan RefusalLogInterval = TimeSpan.FromSeconds(5);

    public static TcpConnectionListener Bind(IPEndPoint endpoint, TcpTransportOptions options, TcpTransportStatistics statistics, ILogger logger)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As Orleans' listener: a restarted silo can take its port back while old connections are in TIME_WAIT,
            // and the IPv6 any-address takes IPv4 too.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (endpoint.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(endpoint);
            socket.Listen(options.ListenBacklog);
            return new TcpConnectionListener(socket, options, statistics, logger);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException($"{endpoint}: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(cancellationToken);
            }
            catch (ObjectDisposedException)
            {
                return null; // unbound
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
            {
                return null; // unbound while accepting
            }
            catch (SocketException e)
            {
                // A connection reset while it waited in the backlog: take the next one.
                _logger.LogDebug(e, "{EndPoint}: an incoming connection failed before it was accepted", EndPoint);
                continue;
            }
            if (accepted.RemoteEndPoint is not IPEndPoint remote)
            {
                accepted.Dispose(); // gone before it could be looked at
                continue;
            }
            if (_admission.TryAdmit(remote.Address) is { } refusal)
            {
                Refuse(accepted, remote, refusal);
                continue;
            }
            try
            {
                TcpConnection.Configure(accepted, _options);
                var connection = TcpConnection.Start(accepted, _options, _statistics, _logger);
                // Fires once both loops are done (also when the connection fails at once): the place is free again.
                connection.ConnectionClosed.Register(() => _admission.Release(remote.Address));
                return connection;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                _admission.Release(remote.Address);
                accepted.Dispose();
                _logger.LogDebug(e, "{EndPoint}: an accepted connection failed before it started", EndPoint);
            }
        }
    }

    /// <summary>Closes a connection past a limit with a reset (no lingering state); logs the first, then a count every few seconds.</summary>
    private void Refuse(Socket accepted, IPEndPoint remote, string reason)
    {
        long refused = Interlocked.Increment(ref _refused);
        try
        {
            accepted.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // Already reset by the peer: closing it is all that is left.
        }
        accepted.Dispose();
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref _lastRefusalLogged);
        if (now - last < (long)RefusalLogInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _lastRefusalLogged, now, last) != last) return;
        _logger.LogWarning("{EndPoint}: refused a connection from {Remote}: {Reason} ({Refused} refused since the listener opened)",
            EndPoint, remote, reason, refused);
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
