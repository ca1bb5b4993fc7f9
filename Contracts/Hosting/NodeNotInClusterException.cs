namespace FtpCluster.Grains.Hosting;

/// <summary>A grain was pinned to a node that no active silo of the cluster is named.</summary>
[GenerateSerializer]
[Alias("FtpCluster.NodeNotInClusterException")]
public sealed class NodeNotInClusterException : Exception
{
    public NodeNotInClusterException(string nodeName, IReadOnlyList<string> nodesUp, IReadOnlyList<string> undescribedSilos)
        : base(Describe(nodeName, nodesUp, undescribedSilos))
    {
        NodeName = nodeName;
    }

    public NodeNotInClusterException() { }

    public NodeNotInClusterException(string message) : base(message) { }

    public NodeNotInClusterException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The node no silo is named.</summary>
    [Id(0)]
    public string NodeName { get; private set; } = "";

    private static string Describe(string nodeName, IReadOnlyList<string> nodesUp, IReadOnlyList<string> undescribedSilos) =>
        $"no silo named '{nodeName}' is in the cluster (nodes up: {(nodesUp.Count == 0 ? "none" : string.Join("; ", nodesUp))}"
        + (undescribedSilos.Count == 0 ? ")" : $"; silos without FtpCluster metadata: {string.Join(", ", undescribedSilos)})");
}
