using Akka.Configuration;
using Cpns.Actors;
using Xunit;

namespace Cpns.Tests.Common;

/// <summary>The waits that used to be constants in code are settings: the defaults are the old values, and a value set in HOCON is the one used.</summary>
public sealed class SettingsTests
{
    [Fact]
    public void The_former_constants_default_to_their_old_values()
    {
        var settings = CpnsSettings.From(CpnsConfig.Load());

        Assert.Equal(TimeSpan.FromMilliseconds(100), settings.Directory.PeerPublishWindow);
        Assert.Equal(TimeSpan.FromSeconds(2), settings.Discovery.PlaceHeldAfterScan);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.Cluster.StatusTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.Cluster.ResolveTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Timeouts.NodeStart);
        Assert.Equal(TimeSpan.FromMinutes(2), settings.Timeouts.ServerJoin);
    }

    [Fact]
    public void A_value_set_in_HOCON_is_the_one_read()
    {
        var settings = CpnsSettings.From(ConfigurationFactory.ParseString("""
            cpns.directory.peer-publish-window = 250ms
            cpns.discovery.place-held-after-scan = 7s
            cpns.cluster.status-timeout = 11s
            cpns.cluster.resolve-timeout = 13s
            cpns.timeouts.node-start = 17s
            cpns.timeouts.server-join = 19s
            """).WithFallback(CpnsConfig.Load()));

        Assert.Equal(TimeSpan.FromMilliseconds(250), settings.Directory.PeerPublishWindow);
        Assert.Equal(TimeSpan.FromSeconds(7), settings.Discovery.PlaceHeldAfterScan);
        Assert.Equal(TimeSpan.FromSeconds(11), settings.Cluster.StatusTimeout);
        Assert.Equal(TimeSpan.FromSeconds(13), settings.Cluster.ResolveTimeout);
        Assert.Equal(TimeSpan.FromSeconds(17), settings.Timeouts.NodeStart);
        Assert.Equal(TimeSpan.FromSeconds(19), settings.Timeouts.ServerJoin);
    }
}
