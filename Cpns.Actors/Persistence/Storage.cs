using Akka.Configuration;
using Akka.Persistence.Sql;
using Microsoft.Data.Sqlite;

namespace Cpns.Actors.Persistence;

public enum StorageKind
{
    Sqlite,
    Postgres,
    Memory,
}

/// <summary>The journal and snapshot-store configuration for each supported database.</summary>
public static class Storage
{
    public const string SqliteFileName = "cpns.db";

    public static Config For(StorageKind kind, string? dataDirectory, string? connectionString) => kind switch
    {
        StorageKind.Sqlite => Sqlite(Path.Combine(dataDirectory ?? throw new ArgumentException("SQLite needs a data folder"),
            SqliteFileName)),
        StorageKind.Postgres => Postgres(connectionString ?? throw new ArgumentException("PostgreSQL needs a connection string")),
        _ => ConfigurationFactory.ParseString(CpnsConfig.Text("persistence-memory")),
    };

    /// <summary>SQLite on one file: created in WAL mode if missing, one writer.</summary>
    public static Config Sqlite(string databasePath)
    {
        var connection = PrepareSqlite(databasePath);
        return WithConnection("persistence-sqlite", connection);
    }

    public static Config Postgres(string connectionString) => WithConnection("persistence-postgres", connectionString);

    /// <summary>Creates the folder and file if needed and switches the file to WAL (a setting SQLite keeps in the file).</summary>
    public static string PrepareSqlite(string databasePath)
    {
        var full = Path.GetFullPath(databasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            DefaultTimeout = 30,
        }.ToString();
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL;";
        var mode = pragma.ExecuteScalar() as string;
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"could not switch {full} to WAL mode (got '{mode}')");
        return connectionString;
    }

    private static Config WithConnection(string file, string connectionString)
    {
        var quoted = "\"" + connectionString.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        return ConfigurationFactory.ParseString($"""
                akka.persistence.journal.sql.connection-string = {quoted}
                akka.persistence.snapshot-store.sql.connection-string = {quoted}
                """)
            .WithFallback(ConfigurationFactory.ParseString(CpnsConfig.Text(file)))
            .WithFallback(SqlPersistence.DefaultConfiguration);
    }
}
