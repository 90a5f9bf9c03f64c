using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CsvHelper;
using CsvHelper.Configuration;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// Charging data records as CSV (RFC 4180, one header row, times in UTC ISO 8601 with milliseconds, amounts in
/// invariant culture) and as JSON (an array of records, camelCase). Both read back to the same records.
/// </summary>
public static class ChargingExport
{
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    private static readonly CsvConfiguration Csv = new(CultureInfo.InvariantCulture) { NewLine = "\n" };

    public static string ToJson(IEnumerable<ChargingRecord> records) => JsonSerializer.Serialize(records.ToList(), Json);

    public static IReadOnlyList<ChargingRecord> FromJson(string json) =>
        JsonSerializer.Deserialize<List<ChargingRecord>>(json, Json) ?? throw new FormatException("the JSON holds no records");

    private static readonly string[] Header =
        ["record_id", "user_id", "service_id", "group_id", "start", "end", "volume_bytes", "sessions", "units", "rate", "amount", "currency"];

    public static string ToCsv(IEnumerable<ChargingRecord> records)
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        using var csv = new CsvWriter(writer, Csv);
        foreach (var name in Header)
            csv.WriteField(name);
        csv.NextRecord();
        foreach (var r in records)
        {
            csv.WriteField(r.RecordId);
            csv.WriteField(r.UserId);
            csv.WriteField(r.ServiceId);
            csv.WriteField(r.GroupId);
            csv.WriteField(Time(r.StartMs));
            csv.WriteField(Time(r.EndMs));
            csv.WriteField(r.VolumeBytes);
            csv.WriteField(r.Sessions);
            csv.WriteField(r.Units);
            csv.WriteField(r.Rate);
            csv.WriteField(r.Amount);
            csv.WriteField(r.Currency);
            csv.NextRecord();
        }

        csv.Flush();
        return writer.ToString();
    }

    public static IReadOnlyList<ChargingRecord> FromCsv(string text)
    {
        using var reader = new StringReader(text);
        using var csv = new CsvReader(reader, Csv);
        if (!csv.Read() || !csv.ReadHeader() || !Header.SequenceEqual(csv.HeaderRecord ?? []))
            throw new FormatException($"a charging CSV starts with the header {string.Join(',', Header)}");
        var records = new List<ChargingRecord>();
        try
        {
            while (csv.Read())
            {
                records.Add(new ChargingRecord(
                    csv.GetField("record_id")!, csv.GetField("user_id")!, csv.GetField("service_id")!, csv.GetField("group_id")!,
                    Ms(csv.GetField("start")!), Ms(csv.GetField("end")!),
                    csv.GetField<long>("volume_bytes"), csv.GetField<long>("sessions"), csv.GetField<long>("units"),
                    csv.GetField<decimal>("rate"), csv.GetField<decimal>("amount"), csv.GetField("currency")!));
            }
        }
        catch (Exception e) when (e is CsvHelperException or FormatException)
        {
            throw new FormatException($"row {csv.Parser.Row}: {e.Message}", e);
        }

        return records;
    }

    private static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    private static long Ms(string text) =>
        new DateTimeOffset(DateTime.ParseExact(text, TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal |
            DateTimeStyles.AssumeUniversal), TimeSpan.Zero).ToUnixTimeMilliseconds();
}
