namespace FtpCluster.Client;

/// <summary>A command line error: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
