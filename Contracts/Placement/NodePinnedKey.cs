namespace FtpCluster.Grains.Placement;

/// <summary>Keys of node-pinned grains: <c>ID@NODE</c>, e.g. <c>deployment-1/stage-2@node-b</c>.</summary>
public static class NodePinnedKey
{
    public static string Create(string id, string nodeName)
    {
        if (string.IsNullOrEmpty(nodeName) || nodeName.Contains('@', StringComparison.Ordinal))
            throw new ArgumentException($"node name '{nodeName}' cannot end a pinned grain key: it must be non-empty and free of '@'");
        return $"{id}@{nodeName}";
    }

    /// <summary>The node a pinned grain's key names (the text after its last '@').</summary>
    public static string NodeOf(string key)
    {
        int at = key.LastIndexOf('@');
        if (at < 0 || at == key.Length - 1)
            throw new ArgumentException($"grain key '{key}' names no node: node-pinned grains are keyed ID@NODE");
        return key[(at + 1)..];
    }
}
