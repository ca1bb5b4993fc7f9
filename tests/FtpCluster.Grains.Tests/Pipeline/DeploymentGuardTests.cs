using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Tests.Pipeline;

/// <summary>Deployment tokens and the settings a live deployment keeps.</summary>
public sealed class DeploymentGuardTests
{
    [Fact]
    public void Tokens_are_256_random_bits_equal_only_by_value_and_never_printed()
    {
        var token = DeploymentToken.New();
        Assert.Equal(32, token.Value.Length);
        Assert.Equal(token, new DeploymentToken([.. token.Value]));
        Assert.NotEqual(token, DeploymentToken.New());
        Assert.NotEqual(token, new DeploymentToken(token.Value[..16]));
        Assert.False(token.Equals(null));
        Assert.Equal("DeploymentToken(hidden)", token.ToString());
        Assert.DoesNotContain(Convert.ToHexString(token.Value), StageSetupWith(token).ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_setup_with_another_token_is_another_setup()
    {
        var token = DeploymentToken.New();
        Assert.Equal(StageSetupWith(token), StageSetupWith(new DeploymentToken([.. token.Value])));
        Assert.NotEqual(StageSetupWith(token), StageSetupWith(DeploymentToken.New()));
    }

    [Fact]
    public void The_settings_that_differ_are_named_with_both_values_and_equal_requests_differ_in_none()
    {
        var live = new DeploymentRequest("/models/a.bin", 2, Routers: ["/r/one.json"]);
        Assert.Empty(DeploymentSettings.Differences(live, live with { Routers = ["/r/one.json"] }));

        var asked = live with { ModelPath = "/models/b.bin", Wire = "int8", Routers = null, ServedName = "b", IdleUnloadSeconds = 0 };
        Assert.Equal(
            ["model: /models/a.bin → /models/b.bin", "wire: f32 → int8", "routers: /r/one.json → none", "served name: the model's → b",
             $"idle unload seconds: {DeploymentRequest.DefaultIdleUnloadSeconds} → 0"],
            DeploymentSettings.Differences(live, asked));
    }

    private static StageSetup StageSetupWith(DeploymentToken token) =>
        new("d", token, 0, "/models/a.bin", 0, 2, IsLast: true, null, "f32", 1024, ["d/0/stage-0@a"], [2]);
}
