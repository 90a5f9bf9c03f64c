using Cpns.Actors.Protocol;
using System.Security.Cryptography;
using Cpns.Actors.Security;
using FsCheck;
using FsCheck.Xunit;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>The logical key hierarchy under random joins and leaves.</summary>
public sealed class LkhPropertyTests
{
    private sealed class Scenario
    {
        public readonly LkhTree Tree = new("lkh-group");
        public readonly Dictionary<string, LkhMember> Current = new();
        public readonly List<LkhMember> Removed = new();
        public long Epoch;
        private int _next;

        public int Join()
        {
            var id = $"m{_next++}";
            var leaf = RandomNumberGenerator.GetBytes(32);
            var member = new LkhMember("lkh-group", id, leaf);
            var sizeBefore = Tree.Count;
            var rekey = Tree.Join(id, leaf, ++Epoch);
            Current[id] = member;
            Broadcast(rekey);
            return Math.Max(sizeBefore, Tree.Count) == 0 ? 0 : rekey.WrapCount;
        }

        public int Leave(int pick)
        {
            var id = Current.Keys.Order(StringComparer.Ordinal).ElementAt(pick % Current.Count);
            var rekey = Tree.Leave(id, ++Epoch);
            Removed.Add(Current[id]);
            Current.Remove(id);
            Broadcast(rekey);
            return rekey.WrapCount;
        }

        // Everyone — current and removed members alike — sees every broadcast rekey.
        private void Broadcast(LkhRekey rekey)
        {
            foreach (var member in Current.Values)
                Assert.True(member.Apply(rekey), "a current member could not follow a rekey");
            foreach (var member in Removed)
                member.Apply(rekey);
        }
    }

    private static int Bound(int n) => n <= 1 ? 2 : 2 * (int)Math.Ceiling(Math.Log2(n)) + 2;

    [Property(MaxTest = 150)]
    public bool After_any_joins_and_leaves_every_member_derives_the_key_and_no_removed_member_can(int[] script)
    {
        var scenario = new Scenario();
        foreach (var step in script)
        {
            var sizeBefore = scenario.Tree.Count;
            var wraps = scenario.Current.Count == 0 || step % 3 != 0 ? scenario.Join() : scenario.Leave(Math.Abs(step));
            var n = Math.Max(sizeBefore, scenario.Tree.Count);
            if (wraps > Bound(n))
                return false;

            if (scenario.Tree.Count == 0)
                continue;
            var root = scenario.Tree.RootKey.ToArray();
            var groupKey = scenario.Tree.GroupKey(scenario.Epoch);
            foreach (var member in scenario.Current.Values)
            {
                if (member.RootKey is not { } held || !held.AsSpan().SequenceEqual(root))
                    return false;
                if (!member.GroupKey(scenario.Epoch)!.KeyCheck.Equals(groupKey.KeyCheck))
                    return false;
            }

            foreach (var removed in scenario.Removed)
            {
                if (removed.KnownKeys.Any(k => k.AsSpan().SequenceEqual(root)))
                    return false;
            }
        }

        return true;
    }

    [Fact]
    public void Rekey_cost_grows_with_log_n_not_n()
    {
        var scenario = new Scenario();
        for (var i = 0; i < 1024; i++)
            scenario.Join();
        var join = scenario.Join();
        var leave = scenario.Leave(17);
        Assert.InRange(join, 1, Bound(1025));
        Assert.InRange(leave, 1, Bound(1025));
        Assert.Equal(24, Bound(1025));
    }

    [Fact]
    public void A_member_who_missed_a_rekey_cannot_follow_the_next_until_it_gets_a_path_refresh()
    {
        var tree = new LkhTree("g");
        var members = new Dictionary<string, LkhMember>();
        for (var i = 0; i < 8; i++)
        {
            var leaf = RandomNumberGenerator.GetBytes(32);
            members[$"m{i}"] = new LkhMember("g", $"m{i}", leaf);
            var join = tree.Join($"m{i}", leaf, i + 1);
            foreach (var m in members.Values)
                Assert.True(m.Apply(join));
        }

        string At(int position) => members.Keys.Single(id => tree.Contains(id) && tree.PositionOf(id) == position);
        var victim = members[At(9)];

        // The victim misses the leave at position 10, which renews its ancestor 2 ...
        var leaving10 = At(10);
        var missed = tree.Leave(leaving10, 9);
        members.Remove(leaving10);
        foreach (var (id, m) in members)
            if (m != victim)
                Assert.True(m.Apply(missed), id);

        // ... so the next rekey, which wraps the root only under the new key of node 2, is closed to it.
        var leaving12 = At(12);
        var next = tree.Leave(leaving12, 10);
        members.Remove(leaving12);
        Assert.False(victim.Apply(next));
        Assert.False(victim.RootKey is { } stale && stale.AsSpan().SequenceEqual(tree.RootKey));

        victim.Refresh(tree.PositionOf(At(9)), tree.Count, tree.PathOf(At(9)));
        Assert.True(victim.RootKey!.AsSpan().SequenceEqual(tree.RootKey));
    }
}
