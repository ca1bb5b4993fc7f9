using System.Net;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// The connections one listener holds open, per remote address and in all, against
/// <see cref="TcpTransportOptions.MaxConnectionsPerAddress"/> and <see cref="TcpTransportOptions.MaxConnections"/>.
/// Thread-safe: connections close on any thread.
/// </summary>
internal sealed class ConnectionAdmission(int maxPerAddress, int maxTotal)
{
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private readonly Lock _lock = new();
    private int _total;

    /// <summary>Connections held now.</summary>
    public int Total
    {
        get
        {
            lock (_lock) return _total;
        }
    }

    /// <summary>
    /// Takes a place for a connection from <paramref name="address"/>; null when it is admitted (call <see cref="Release"/>
    /// when it closes), else why not.
    /// </summary>
    public string? TryAdmit(IPAddress address)
    {
        address = Normalize(address);
        lock (_lock)
        {
            int fromAddress = _perAddress.GetValueOrDefault(address);
            if (fromAddress >= maxPerAddress) return $"{address} already holds {fromAddress} connections, the most one address may (MaxConnectionsPerAddress)";
            if (_total >= maxTotal) return $"{_total} connections are open, the most this listener takes (MaxConnections)";
            _perAddress[address] = fromAddress + 1;
            _total++;
            return null;
        }
    }

    /// <summary>Gives back the place of an admitted connection from <paramref name="address"/>, once it has closed.</summary>
    public void Release(IPAddress address)
    {
        address = Normalize(address);
        lock (_lock)
        {
            int left = _perAddress.GetValueOrDefault(address) - 1;
            if (left > 0) _perAddress[address] = left;
            else _perAddress.Remove(address);
            _total--;
        }
    }

    /// <summary>An IPv4 peer on a dual-mode socket arrives as ::ffff:a.b.c.d; it is the same address.</summary>
    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
