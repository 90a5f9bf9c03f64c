namespace Cpns.Actors.Security;

/// <summary>
/// Files that hold secrets (key files, certificates with their keys, API client hashes): written owner-only in one
/// atomic step, and refused when read if other users could read or change them.
/// </summary>
public static class SecretFiles
{
    private const UnixFileMode OthersAccess =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>Throws <see cref="InvalidDataException"/> when the file at <paramref name="path"/> is open to other users.</summary>
    public static void CheckOwnerOnly(string path)
    {
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & OthersAccess) != 0)
            throw new InvalidDataException($"{path} can be read or written by other users: chmod 600 {path}");
    }

    /// <summary>Writes the whole file owner-only (through a temporary file, so a reader never sees half of it).</summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes, bool overwrite = true)
    {
        if (!overwrite && File.Exists(path))
            throw new IOException($"{path} exists already");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
