using System.CommandLine;
using Cpns.Actors.Persistence;
using Cpns.Host.Hosting;

namespace Cpns.Host.Cli;

/// <summary>Options every command that runs actors takes: where its data lives, which database, extra configuration.</summary>
public sealed class CommonOptions
{
    public Option<string> Data { get; } = new("--data")
    {
        Description = "Data folder: the SQLite database (cpns.db) and the server's key file live here",
        DefaultValueFactory = _ => Path.Combine(Environment.CurrentDirectory, "cpns-data"),
    };

    public Option<StorageKind> Db { get; } = new("--db")
    {
        Description = "Where durable state goes: sqlite (a file in --data), postgres (needs --connection), memory (nothing kept)",
        DefaultValueFactory = _ => StorageKind.Sqlite,
    };

    public Option<string?> Connection { get; } = new("--connection")
    {
        Description = "PostgreSQL connection string, e.g. \"Host=127.0.0.1;Port=5432;Database=cpns;Username=cpns;Password=...\"",
    };

    public Option<FileInfo?> Config { get; } = new("--config")
    {
        Description = "A HOCON file whose settings override the built-in ones (hocon/*.conf)",
    };

    public Option<string> LogLevel { get; } = new("--log-level")
    {
        Description = "Akka log level: DEBUG, INFO, WARNING or ERROR",
        DefaultValueFactory = _ => "WARNING",
    };

    public CommonOptions(string defaultLogLevel = "WARNING")
    {
        LogLevel.DefaultValueFactory = _ => defaultLogLevel;
        LogLevel.AcceptOnlyFromAmong("DEBUG", "INFO", "WARNING", "ERROR");
    }

    public void AddTo(Command command)
    {
        command.Add(Data);
        command.Add(Db);
        command.Add(Connection);
        command.Add(Config);
        command.Add(LogLevel);
        OptionRules.ExistingFile(Config);
        command.Validators.Add(result =>
        {
            if (result.ValueOf(Db) == StorageKind.Postgres && string.IsNullOrWhiteSpace(result.ValueOf(Connection)))
                result.AddError("--db postgres needs --connection \"Host=...;Database=...;Username=...;Password=...\"");
        });
    }

    /// <summary>The node's options; a PostgreSQL database is checked to be reachable before anything starts.</summary>
    public NodeOptions Read(ParseResult parse)
    {
        var options = new NodeOptions
        {
            DataDirectory = Path.GetFullPath(parse.GetValue(Data)!),
            Storage = parse.GetValue(Db),
            ConnectionString = parse.GetValue(Connection),
            ConfigFile = parse.GetValue(Config)?.FullName,
            LogLevel = parse.GetValue(LogLevel)!,
        };
        if (options.Storage == StorageKind.Postgres)
            Storage.CheckPostgresReachable(options.ConnectionString!);
        return options;
    }
}
