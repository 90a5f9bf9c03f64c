using Cpns.Actors.Protocol;
using Cpns.Actors.Security;
using Cpns.Actors.Server;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Security;

public sealed class KeyFileTests : IDisposable
{
    private readonly TempFolder _folder = new("cpns-keys");

    public void Dispose() => _folder.Dispose();

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_key_file_is_written_owner_only_and_refused_once_others_can_read_it()
    {
        var path = _folder.File(ServerSecrets.FileName);
        var secrets = ServerSecrets.LoadOrCreate(path, "cpns-server");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(secrets.Identity.PublicKeys, ServerSecrets.Load(path, "cpns-server").Identity.PublicKeys);

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var refused = Assert.Throws<InvalidDataException>(() => ServerSecrets.Load(path, "cpns-server"));
        Assert.Contains($"chmod 600 {path}", refused.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_nodes_entities_come_back_with_the_keys_their_ids_are_bound_to()
    {
        var first = new IdentityFiles(_folder.File("identities")).LoadOrCreate("a-g1", EntityKind.PnGateway);
        var again = new IdentityFiles(_folder.File("identities")).LoadOrCreate("a-g1", EntityKind.PnGateway);
        Assert.Equal(first.PublicKeys, again.PublicKeys);
        Assert.NotEqual(first.PublicKeys, new IdentityFiles(_folder.File("identities")).LoadOrCreate("a-g2", EntityKind.PnGateway).PublicKeys);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_folder.File("identities/a-g1.key.json")));

        var wrongKind = Assert.Throws<InvalidDataException>(() => new IdentityFiles(_folder.File("identities")).LoadOrCreate("a-g1", EntityKind.Pne));
        Assert.Contains("PnGateway 'a-g1', not of Pne", wrongKind.Message);
    }
}
