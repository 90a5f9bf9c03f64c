namespace Cpns.Tests.Support;

/// <summary>The checkout the tests run from: the folder that holds <c>cpns.sln</c>.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "cpns.sln")))
                return dir.FullName;
        }

        throw new FileNotFoundException("no cpns.sln above " + AppContext.BaseDirectory);
    }
}
