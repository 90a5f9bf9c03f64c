using Akka.Configuration;
using Cpns.Actors;
using Cpns.Actors.Persistence;

namespace Cpns.Host.Hosting;

/// <summary>Where a `cpns` process keeps its state and how it is configured, from the command line.</summary>
public sealed record NodeOptions
{
    public required string DataDirectory { get; init; }
    public required StorageKind Storage { get; init; }
    public string? ConnectionString { get; init; }
    public string? ConfigFile { get; init; }
    public string LogLevel { get; init; } = "WARNING";
    public string SqliteFileName { get; init; } = Actors.Persistence.Storage.SqliteFileName;
}

/// <summary>
/// Builds a process's HOCON configuration: command-line overrides, then the user's <c>--config</c> file, then
/// the persistence file for the chosen database, then the project's files (<c>hocon/</c>).
/// </summary>
public static class HostConfiguration
{
    public static Config Build(NodeOptions options, string overrides = "", params string[] files)
    {
        var config = ConfigurationFactory.ParseString($"""
            akka.loglevel = {options.LogLevel}
            akka.stdout-loglevel = {options.LogLevel}
            """);
        if (!string.IsNullOrEmpty(overrides))
            config = ConfigurationFactory.ParseString(overrides).WithFallback(config);
        if (options.ConfigFile is not null)
        {
            if (!File.Exists(options.ConfigFile))
                throw new FileNotFoundException($"configuration file {options.ConfigFile} does not exist", options.ConfigFile);
            config = config.WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(options.ConfigFile)));
        }

        return config
            .WithFallback(options.Storage == StorageKind.Sqlite
                ? Storage.Sqlite(Path.Combine(options.DataDirectory, options.SqliteFileName))
                : Storage.For(options.Storage, options.DataDirectory, options.ConnectionString))
            .WithFallback(CpnsConfig.Load(files));
    }
}
