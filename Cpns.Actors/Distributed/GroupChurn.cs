using Cpns.Actors.Local;
using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Server;

namespace Cpns.Actors.Distributed;

/// <summary>
/// Drives service groups through the key flows on a running server, for demonstrations and soak runs: it creates
/// <c>groups</c> groups (alternately pushed and pulled) from the registered PNEs, then every interval makes one
/// membership change — a join when a group has room, else a leave — so every group keeps rekeying. Each change and
/// its epoch is reported.
/// </summary>
public sealed class GroupChurn : ReceiveActor, IWithTimers
{
    private sealed record Tick : INoSerializationVerificationNeeded
    {
        public static readonly Tick Instance = new();
    }

    private readonly TimeSpan _askTimeout = CpnsSettings.From(Context.System).Timeouts.Ask;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Random _random = new(7);
    private int _turn;

    public GroupChurn(ServerEndpoints server, int groups, int membersPerGroup, TimeSpan interval, Action<string> report)
    {
        ReceiveAsync<Tick>(async _ =>
        {
            try
            {
                if (await ChangeOneAsync(server, groups, membersPerGroup) is { } line)
                    report(line);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                _log.Warning("group churn: the server did not answer in time; trying again next round");
            }
        });
        Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, interval);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ServerEndpoints server, int groups, int membersPerGroup, TimeSpan interval, Action<string> report) =>
        Akka.Actor.Props.Create(typeof(GroupChurn), server, groups, membersPerGroup, interval, report);

    public static string GroupName(int index) => $"demo-{index}";

    private async Task<string?> ChangeOneAsync(ServerEndpoints server, int groups, int membersPerGroup)
    {
        var pnes = (await server.Registry.Ask<Inventory>(GetInventory.Instance, _askTimeout)).Pnes.Select(p => p.DeviceId)
            .Order(StringComparer.Ordinal).ToList();
        if (pnes.Count == 0)
            return null;
        var existing = (await server.Smf.Ask<GroupList>(ListGroups.Instance, _askTimeout)).Groups.ToDictionary(g => g.GroupId);

        for (var i = 1; i <= groups; i++)
        {
            if (existing.ContainsKey(GroupName(i)))
                continue;
            var members = pnes.OrderBy(_ => _random.Next()).Take(Math.Max(1, membersPerGroup)).ToList();
            var mode = i % 2 == 1 ? DeliveryMode.Push : DeliveryMode.Pull;
            return Describe(await server.Smf.Ask<object>(new LocalRequest(new CreateGroup(GroupName(i), Operator.Id, mode, members)), _askTimeout),
                $"created ({mode.ToString().ToLowerInvariant()}, {members.Count} members)");
        }

        var group = existing[GroupName(_turn++ % groups + 1)];
        var outsiders = pnes.Except(group.Members).ToList();
        if (group.Members.Count < membersPerGroup + 1 && outsiders.Count > 0)
        {
            var joining = outsiders[_random.Next(outsiders.Count)];
            return Describe(await server.Smf.Ask<object>(new LocalRequest(new AddMember(group.GroupId, Operator.Id, joining)), _askTimeout),
                $"{joining} joined");
        }

        if (group.Members.Count <= 1)
            return null;
        var leaving = group.Members[_random.Next(group.Members.Count)];
        return Describe(await server.Smf.Ask<object>(new LocalRequest(new RemoveMember(group.GroupId, Operator.Id, leaving)), _askTimeout),
            $"{leaving} left");
    }

    private static string Describe(object answer, string change) => answer switch
    {
        GroupAccepted accepted => $"{accepted.GroupId}: {change}; epoch {accepted.Epoch}, {accepted.Members.Count} members",
        GroupRejected rejected => $"{rejected.GroupId}: {change} refused: {rejected.Error} ({rejected.Detail})",
        _ => $"{change}: unexpected answer {answer.GetType().Name}",
    };
}
