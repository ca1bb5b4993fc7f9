using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Networking.Shared;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>Opens outbound <see cref="TcpConnection"/>s: silo to silo, and client to gateway.</summary>
internal sealed class TcpConnectionFactory(IOptions<TcpTransportOptions> options, TcpTransportStatistics statistics, ILoggerFactory loggerFactory)
    : IConnectionFactory
{
    private readonly TcpTransportOptions _options = options.Value;
    private readonly ILogger _logger = loggerFactory.CreateLogger(TcpTransportRegistration.LogCategory);

    /// <exception cref="SocketConnectionException">The connection was refused or failed (Orleans' own transport throws the same).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first (Orleans' connect timeout).</exception>
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            TcpConnection.Configure(socket, _options);
            await socket.ConnectAsync(endpoint, cancellationToken);
            return TcpConnection.Start(socket, _options, statistics, _logger);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new SocketConnectionException($"Unable to connect to {endpoint}. Error: {e.SocketErrorCode}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
