namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>How many bytes a <see cref="TcpConnection"/> has received from its peer so far.</summary>
public interface IReceivedBytesFeature
{
    long ReceivedBytes { get; }
}
