namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// A TLS file is missing, unreadable, expired or not what it should be; the message names the file and what is wrong. An
/// <see cref="InvalidOperationException"/>, as the other reasons a silo cannot be configured are.
/// </summary>
public sealed class TlsCredentialsException : InvalidOperationException
{
    public TlsCredentialsException() { }

    public TlsCredentialsException(string message) : base(message) { }

    public TlsCredentialsException(string message, Exception innerException) : base(message, innerException) { }
}
