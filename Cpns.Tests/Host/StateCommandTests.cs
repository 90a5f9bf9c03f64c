using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Host;

public sealed class StateCommandTests : IDisposable
{
    private readonly TempFolder _folder = new("cpns-state");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task State_of_a_folder_without_a_database_is_a_clear_error()
    {
        var (exit, stdout, stderr) = await CpnsProcess.RunAsync(TimeSpan.FromMinutes(1), "state", "--data", _folder.Path);
        Assert.Equal(2, exit);
        Assert.Contains("no database at", stdout + stderr);
    }
}
