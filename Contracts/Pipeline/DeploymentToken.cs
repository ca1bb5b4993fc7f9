using System.Security.Cryptography;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The secret a coordinator issues to one placement of its deployment's stages (<see cref="StageSetup.Token"/>): every
/// later call of those stages carries it, so only the coordinator and the placement's own stages can drive them.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeploymentToken")]
public sealed record DeploymentToken([property: Id(0)] byte[] Value)
{
    /// <summary>256 bits.</summary>
    public const int Bytes = 32;

    /// <summary>A fresh token from the system's cryptographic random source.</summary>
    public static DeploymentToken New() => new(RandomNumberGenerator.GetBytes(Bytes));

    /// <summary>Compared in constant time (for tokens of the same length), so a caller cannot learn it byte by byte.</summary>
    public bool Equals(DeploymentToken? other) =>
        other?.Value is { } value && Value is not null && CryptographicOperations.FixedTimeEquals(Value, value);

    public override int GetHashCode() => Bytes;

    /// <summary>Never the value: setups and calls get logged.</summary>
    public override string ToString() => "DeploymentToken(hidden)";
}

/// <summary>A stage refused a call without its deployment's token, or with another one (see <see cref="DeploymentToken"/>).</summary>
[GenerateSerializer]
[Alias("FtpCluster.StageAccessDeniedException")]
public sealed class StageAccessDeniedException : Exception
{
    public StageAccessDeniedException()
    {
    }

    public StageAccessDeniedException(string message)
        : base(message)
    {
    }

    public StageAccessDeniedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
