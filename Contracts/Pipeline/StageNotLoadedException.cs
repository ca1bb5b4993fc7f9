namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// A stage that holds no weights: it was never loaded, or Orleans let the activation go (for example
/// when the directory partition that listed it was on a silo that died). The coordinator re-plans.
/// </summary>
[GenerateSerializer]
[Alias("FtpCluster.StageNotLoadedException")]
public sealed class StageNotLoadedException : Exception
{
    public StageNotLoadedException()
    {
    }

    public StageNotLoadedException(string stageKey)
        : base($"stage {stageKey} holds no weights: it was never loaded or its activation was lost")
    {
    }

    public StageNotLoadedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
