using System.Net;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;

namespace FtpCluster.Cluster.Tests;

public sealed class NodePinnedKeyTests
{
    [Theory]
    [InlineData("deployment-1/stage-2", "node-b")]
    [InlineData("user@example.com/job", "a")]
    public void The_node_is_read_back_from_the_key(string id, string node)
    {
        Assert.Equal(node, NodePinnedKey.NodeOf(NodePinnedKey.Create(id, node)));
    }

    [Theory]
    [InlineData("deployment-1/stage-2")]
    [InlineData("deployment-1/stage-2@")]
    public void A_key_without_a_node_is_refused(string key)
    {
        var error = Assert.Throws<ArgumentException>(() => NodePinnedKey.NodeOf(key));

        Assert.Equal($"grain key '{key}' names no node: node-pinned grains are keyed ID@NODE", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a@b")]
    public void A_node_name_that_cannot_end_a_key_is_refused(string node)
    {
        var error = Assert.Throws<ArgumentException>(() => NodePinnedKey.Create("stage-0", node));

        Assert.Equal($"node name '{node}' cannot end a pinned grain key: it must be non-empty and free of '@'", error.Message);
    }

    [Fact]
    public void The_ready_line_a_silo_prints_parses_back()
    {
        var line = new SiloReadyLine("a", IPEndPoint.Parse("127.0.0.1:11111"), IPEndPoint.Parse("127.0.0.1:30000"), 4242);

        Assert.Equal("ftpcluster-silo ready: node=a silo=127.0.0.1:11111 gateway=127.0.0.1:30000 pid=4242", line.ToString());
        Assert.True(SiloReadyLine.TryParse(line.ToString(), out var parsed));
        Assert.Equal(line, parsed);
        Assert.False(SiloReadyLine.TryParse("ftpcluster-silo ready: node=a", out _));
        Assert.False(SiloReadyLine.TryParse("12:00:00.000 info: ftpcluster-silo ready: node=a silo=127.0.0.1:1 gateway=127.0.0.1:2 pid=1", out _));
    }
}
