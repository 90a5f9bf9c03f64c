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

    /// <summary>
    /// Opens one connection to the PostgreSQL database, so a wrong address or password is one clear refusal before any
    /// actor starts, instead of a journal that keeps failing underneath a running node.
    /// </summary>
    public static void CheckPostgresReachable(string connectionString)
    {
        Npgsql.NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new StorageUnavailableException($"the --connection string is not a PostgreSQL connection string: {e.Message}", e);
        }

        try
        {
            using var connection = new Npgsql.NpgsqlConnection(builder.ConnectionString);
            connection.Open();
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new StorageUnavailableException(
                $"cannot reach PostgreSQL database '{builder.Database}' at {builder.Host}:{builder.Port} as '{builder.Username}': " +
                e.Message, e);
        }
    }

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

/// <summary>The database a command was pointed at cannot be used.</summary>
public sealed class StorageUnavailableException(string message, Exception cause) : Exception(message, cause);
