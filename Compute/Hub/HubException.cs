namespace FtpCluster.Compute.Hub;

/// <summary>
/// A Hugging Face repo id that could not be resolved to local files: offline with files missing, a download that
/// failed or did not match its checksum, an answer from the Hub that says no. The message names the repository, the
/// file, and the URL or cache folder involved.
/// </summary>
public sealed class HubException : IOException
{
    public HubException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
