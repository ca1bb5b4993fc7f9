using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Hosting;

/// <summary>A served model's download in the silo's log: a line when each file starts, at each quarter, and when it is done.</summary>
internal sealed class LoggedDownloadProgress(ILogger logger, string model) : IProgress<(string File, long Done, long Total)>
{
    private string? _file;
    private long _quartersLogged = -1;

    public void Report((string File, long Done, long Total) value)
    {
        var (file, done, total) = value;
        if (file != _file)
        {
            _file = file;
            _quartersLogged = -1;
        }
        long quarters = total > 0 ? done * 4 / total : 0;
        if (quarters == _quartersLogged) return;
        _quartersLogged = quarters;
        logger.LogInformation("Serving {Model}: downloading {File}: {Done} of {Total} bytes", model, file, done, total);
    }
}
