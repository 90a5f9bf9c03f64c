using System.Xml.Linq;
using Cpns.Actors.Protocol;

namespace Cpns.Actors.Common;

/// <summary>
/// An entity's status as a Presence Information Data Format document (RFC 3863), with the RPID "busy" activity
/// (RFC 4480) when it is busy, for the presence enabler CPNS depends on (seed §5.1.1).
/// </summary>
public static class Pidf
{
    public static readonly XNamespace Presence = "urn:ietf:params:xml:ns:pidf";
    public static readonly XNamespace DataModel = "urn:ietf:params:xml:ns:pidf:data-model";
    public static readonly XNamespace Rpid = "urn:ietf:params:xml:ns:pidf:rpid";

    public static string EntityUri(string deviceId) => $"pres:{deviceId}@cpns";

    public static string Render(EntityStatus status, DateTimeOffset at)
    {
        var open = status.Presence != Protocol.Presence.Offline && status.Reachable;
        var tuple = new XElement(Presence + "tuple", new XAttribute("id", "t-" + status.DeviceId),
            new XElement(Presence + "status", new XElement(Presence + "basic", open ? "open" : "closed")),
            new XElement(Presence + "timestamp", at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")));
        if (status.Note.Length > 0)
            tuple.Add(new XElement(Presence + "note", status.Note));
        var document = new XElement(Presence + "presence",
            new XAttribute("entity", EntityUri(status.DeviceId)),
            new XAttribute(XNamespace.Xmlns + "dm", DataModel.NamespaceName),
            new XAttribute(XNamespace.Xmlns + "rpid", Rpid.NamespaceName),
            tuple);
        if (status.Presence == Protocol.Presence.Busy)
            document.Add(new XElement(DataModel + "person", new XAttribute("id", "p-" + status.DeviceId),
                new XElement(Rpid + "activities", new XElement(Rpid + "busy"))));
        var xml = new XDocument(new XDeclaration("1.0", "UTF-8", null), document);
        return xml.Declaration + Environment.NewLine + xml.ToString(SaveOptions.None);
    }
}
