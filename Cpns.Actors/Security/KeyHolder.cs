using Akka.Actor;
using Akka.Event;
using Cpns.Actors.Protocol;
using Cpns.Actors.Common;

namespace Cpns.Actors.Security;

/// <summary>
/// What the CSKMF of a PN GW and of a PNE share: it holds the group keys this entity received (through its
/// <c>seca</c> child when pulled, directly when pushed), accepts a key only if it unwraps as sealed for it by
/// its expected wrapper and carries the key manager's signed epoch announcement, acknowledges it, and
/// encrypts and decrypts group content with it (the previous epoch only within the grace window).
/// </summary>
public abstract class KeyHolder : UntypedActor, IWithTimers
{
    private sealed record PushOverdue(string GroupId, long Epoch) : INoSerializationVerificationNeeded;

    /// <summary>An epoch this holder installed, and how it came.</summary>
    protected sealed record InstalledKey(GroupKey Key, DeliveryMode Mode, IReadOnlyList<string> LocalMembers,
        EpochAnnouncement Announcement, bool Pulled);

    private readonly Dictionary<string, PublicKeys> _wrappers = new(StringComparer.Ordinal);
    private string? _managerId;
    private Octets? _managerSigningKey;
    private readonly AdaptiveTimeout _pushTimeout;
    /// <summary>Per group, the pushed epoch this holder was told to expect, and when (to learn how long pushes take).</summary>
    private readonly Dictionary<string, (long Epoch, long AtMs)> _pushExpected = new(StringComparer.Ordinal);

    protected KeyHolder(EntityIdentity identity, CpnsSettings settings, FlowLeg inboundLeg)
    {
        Identity = identity;
        Settings = settings;
        Pairwise = new PairwiseKeys(identity);
        Link = new SecureLink(Context, identity, settings, Log);
        Seca = Context.Child("seca") is var kept && !kept.IsNobody()
            ? kept
            : Context.ActorOf(SecurityAgent.Props(identity, inboundLeg, settings), "seca");
        Context.Parent.Tell(SiblingsWanted.Instance, Self);
        _pushTimeout = new AdaptiveTimeout(settings.Keys.PushTimeout, settings.Keys.PushTimeoutMax);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// The SECA is restarted with its holder rather than made anew, so the SMF it was introduced to keeps sending to the
    /// same actor.
    /// </summary>
    protected override void PreRestart(Exception reason, object message) => PostStop();

    protected EntityIdentity Identity { get; }

    protected CpnsSettings Settings { get; }

    protected PairwiseKeys Pairwise { get; }

    protected SecureLink Link { get; }

    protected GroupKeyRing Ring { get; } = new();

    protected IActorRef Seca { get; }

    /// <summary>The entity's SMF, introduced by the entity root (the SMF asks this holder for its SECA itself).</summary>
    protected Sibling Smf { get; } = new("smf");

    protected ILoggingAdapter Log { get; } = Context.GetLogger();

    protected long NowMs => Context.System.Scheduler.Now.ToUnixTimeMilliseconds();

    /// <summary>
    /// Who may wrap keys for this holder (the server for a PN GW, and in the distributed topology the Group Key Managers
    /// too; the PN GW for a PNE), and whose signature every epoch must carry (the server's key manager).
    /// </summary>
    protected void Trust(IReadOnlyList<(string Id, PublicKeys Keys)> wrappers, string managerId, Octets managerSigningKey)
    {
        _wrappers.Clear();
        foreach (var (wrapperId, wrapperKeys) in wrappers)
        {
            _wrappers[wrapperId] = wrapperKeys;
            Link.Guard.Trust(wrapperId, wrapperKeys.Signing);
            Seca.Tell(new TrustSigner(wrapperId, wrapperKeys.Signing));
        }

        _managerId = managerId;
        _managerSigningKey = managerSigningKey;
    }

    protected bool IsWrapper(string id) => _wrappers.ContainsKey(id);

    /// <summary>One more who may wrap keys here, met by its credential (a Group Key Manager of the distributed topology).</summary>
    protected void TrustWrapper(string wrapperId, PublicKeys keys)
    {
        if (_wrappers.TryGetValue(wrapperId, out var known) && known == keys)
            return;
        _wrappers[wrapperId] = keys;
        Link.Guard.Trust(wrapperId, keys.Signing);
    }

    /// <summary>
    /// Where this holder takes wrappers met by their credential: what gives the signing key a message names through
    /// the credential it carries (null for a message whose sender must already be trusted). Null: every sender must
    /// already be trusted, and an unknown one is refused before its payload is read.
    /// </summary>
    protected virtual Func<object, Octets?>? WrapperKeyOf => null;

    protected sealed override void OnReceive(object message)
    {
        switch (message)
        {
            case ISecureWire wire:
                if (WrapperKeyOf is { } keyOf
                        ? Link.TryOpenSelfSigned(wire, keyOf, out var inner, out var senderId)
                        : Link.TryOpen(wire, out inner, out senderId))
                    OnSigned(inner, senderId);
                break;
            case GroupKeyDelivery delivery when Sender.Equals(Seca):
                // The SECA opened and checked the envelope this came in.
                Install(delivery, pulled: true);
                break;
            case DropGroupKeys drop:
                Ring.Drop(drop.GroupId, drop.UpToEpoch, drop.Revoked, drop.LeftGroup);
                if (drop.Revoked || drop.LeftGroup)
                    _pushExpected.Remove(drop.GroupId);
                OnDropped(drop);
                break;
            case GetKeyState query:
                Sender.Tell(Ring.State(query.GroupId, Identity.DeviceId));
                break;
            case ExportGroupKey export:
                Export(export);
                break;
            case EncryptContent encrypt when !WaitsForKey(encrypt):
                Encrypt(encrypt);
                break;
            case DecryptContent decrypt when !WaitsForKey(decrypt):
                Sender.Tell(Decrypt(decrypt.Ciphertext));
                break;
            case EncryptContent or DecryptContent:
                break; // held until the key it needs is fetched
            case GroupKeyRefused refused:
                OnRefused(refused);
                break;
            case ExpectGroupKey expect:
                if (!Holds(expect.GroupId, expect.Epoch))
                {
                    _pushExpected[expect.GroupId] = (expect.Epoch, NowMs);
                    Timers.StartSingleTimer(("push", expect.GroupId), new PushOverdue(expect.GroupId, expect.Epoch),
                        _pushTimeout.Current);
                }

                OnExpect(expect);
                break;
            case PushOverdue overdue:
                if (!Holds(overdue.GroupId, overdue.Epoch))
                {
                    _pushTimeout.TimedOut();
                    Log.Info("{0}: pushed key {1}#{2} did not arrive; pulling it", Identity.DeviceId, overdue.GroupId,
                        overdue.Epoch);
                    Smf.Tell(new GroupKeyMissing(overdue.GroupId, overdue.Epoch), Self);
                }

                break;
            case GetSecurityCounters:
                Sender.Tell(Link.Counters());
                break;
            case SiblingIs when Smf.TryMeet(message, Sender, Context.Parent):
                break;
            case SiblingsWanted:
                Sender.Tell(new SiblingIs("seca", Seca));
                break;
            default:
                OnOther(message);
                break;
        }
    }

    private void OnSigned(object message, string senderId)
    {
        switch (message)
        {
            case GroupKeyDelivery delivery when delivery.WrapperId == senderId:
                Install(delivery, pulled: false);
                break;
            default:
                OnOtherSigned(message, senderId);
                break;
        }
    }

    protected abstract void OnInstalled(InstalledKey installed);

    /// <summary>A delivery wrapped for this holder alone carried its LKH path (a PN GW of a large push group).</summary>
    protected virtual void OnPath(GroupKeyDelivery delivery)
    {
    }

    protected virtual void OnDropped(DropGroupKeys drop)
    {
    }

    /// <summary>The public keys of one who may wrap keys for this holder; null for anyone else.</summary>
    protected PublicKeys? WrapperKeys(string wrapperId) => _wrappers.GetValueOrDefault(wrapperId);

    protected virtual void OnRefused(GroupKeyRefused refused)
    {
    }

    /// <summary>True if this holder keeps <paramref name="request"/> (with its sender) until it has fetched the key it needs.</summary>
    protected virtual bool WaitsForKey(object request) => false;

    protected virtual void OnExpect(ExpectGroupKey expect)
    {
    }

    protected abstract void OnOther(object message);

    protected virtual void OnOtherSigned(object message, string senderId) =>
        Log.Warning("{0}: unexpected signed {1} from {2}", Identity.DeviceId, message.GetType().Name, senderId);

    /// <summary>True if this epoch, or a newer one, of the group is held.</summary>
    protected bool Holds(string groupId, long epoch) => Ring.Current(groupId) is { } current && current.Key.Epoch >= epoch;

    private void Install(GroupKeyDelivery delivery, bool pulled)
    {
        if (Refusal(delivery) is var (counter, detail))
        {
            Link.CountRefusal(counter);
            Log.Warning("{0}: key for {1}#{2} from {3} dropped: {4}", Identity.DeviceId, delivery.GroupId, delivery.Epoch,
                delivery.WrapperId, detail);
            return;
        }

        var key = GroupKey.UnwrapFrom(Pairwise, delivery.WrapperId, _wrappers[delivery.WrapperId].Agreement, delivery.WrappedKey,
            delivery.GroupId, delivery.Epoch);
        if (key is null || key.KeyCheck != delivery.KeyCheck)
        {
            Link.CountRefusal("KeyNotOpened");
            Log.Warning("{0}: key for {1}#{2} from {3} failed to unwrap or to match its check value; dropped", Identity.DeviceId,
                delivery.GroupId, delivery.Epoch, delivery.WrapperId);
            key?.Dispose();
            return;
        }

        if (delivery.Path is not null)
            OnPath(delivery);
        InstallKey(new InstalledKey(key, delivery.Mode, delivery.LocalMembers, delivery.Announcement, pulled));
    }

    /// <summary>Installs a key whose announcement was checked, acknowledges it; false if it is already held or too old.</summary>
    protected bool InstallKey(InstalledKey installed)
    {
        var key = installed.Key;
        if (!Ring.Install(key, installed.LocalMembers, installed.Announcement, NowMs))
        {
            key.Dispose();
            return false;
        }

        if (Holds(key.GroupId, key.Epoch))
            Timers.Cancel(("push", key.GroupId));
        if (!installed.Pulled && _pushExpected.TryGetValue(key.GroupId, out var expected) && expected.Epoch <= key.Epoch)
        {
            _pushExpected.Remove(key.GroupId);
            _pushTimeout.Observe(TimeSpan.FromMilliseconds(NowMs - expected.AtMs));
        }
        Acknowledge(key.GroupId, key.Epoch);
        OnInstalled(installed);
        return true;
    }

    /// <summary>Why a delivered key is not installed, as the counter it goes under and a line for the log.</summary>
    private (string Counter, string Detail)? Refusal(GroupKeyDelivery delivery)
    {
        if (delivery.RecipientId != Identity.DeviceId)
            return ("KeyForSomeoneElse", $"addressed to {delivery.RecipientId}");
        if (!_wrappers.ContainsKey(delivery.WrapperId))
            return ("KeyFromUntrustedWrapper", $"wrapped by {delivery.WrapperId}, who may not give keys here");
        return AnnouncementProblem(delivery.GroupId, delivery.Epoch, delivery.KeyCheck, delivery.Announcement) is { } problem
            ? ("KeyNotVouched", problem)
            : null;
    }

    /// <summary>Why an epoch's announcement does not vouch for this key, if it does not.</summary>
    protected string? AnnouncementProblem(string groupId, long epoch, Octets keyCheck, EpochAnnouncement announcement) =>
        announcement.GroupId != groupId || announcement.Epoch != epoch || announcement.KeyCheck != keyCheck ||
        announcement.ManagerId != _managerId || _managerSigningKey is null || !announcement.VerifiedBy(_managerSigningKey)
            ? "its epoch announcement is not signed by the group's key manager"
            : null;

    /// <summary>Tells whoever delivered the key that it is installed (the server for a PN GW, the PN GW for a PNE).</summary>
    protected abstract void Acknowledge(string groupId, long epoch);

    protected void PublishInstalled(GroupKey key, bool pulled, bool isMember) =>
        Context.System.EventStream.Publish(new KeyInstalled(key.GroupId, key.Epoch, Identity.DeviceId,
            pulled ? DeliveryMode.Pull : DeliveryMode.Push, isMember, key.KeyCheck));

    private void Encrypt(EncryptContent encrypt)
    {
        if (Ring.Current(encrypt.GroupId) is not { } current)
        {
            Sender.Tell(new ContentRefused(encrypt.GroupId, 0, KeyError.UnknownGroup, $"{Identity.DeviceId} holds no key of {encrypt.GroupId}"));
            return;
        }

        Sender.Tell(GroupCipher.Encrypt(current.Key, Identity.DeviceId, encrypt.Plaintext.Span));
    }

    protected object Decrypt(GroupCiphertext ciphertext)
    {
        var (held, error) = Ring.Get(ciphertext.GroupId, ciphertext.Epoch, NowMs, Settings.Keys.GraceWindow);
        if (held is null)
        {
            var reason = error == KeyError.NotYetAvailable ? KeyError.UnknownEpoch : error!.Value;
            return new ContentRefused(ciphertext.GroupId, ciphertext.Epoch, reason,
                $"{Identity.DeviceId} cannot open {ciphertext.GroupId}#{ciphertext.Epoch}: {reason}");
        }

        var plaintext = GroupCipher.Decrypt(held.Key, ciphertext);
        if (plaintext is null)
        {
            Log.Warning("{0}: content for {1}#{2} from {3} failed its integrity check", Identity.DeviceId, ciphertext.GroupId,
                ciphertext.Epoch, ciphertext.SenderId);
            return new ContentRefused(ciphertext.GroupId, ciphertext.Epoch, KeyError.IntegrityFailure,
                "the ciphertext or its header was changed");
        }

        return new ContentDecrypted(ciphertext.GroupId, ciphertext.Epoch, ciphertext.SenderId, Octets.Own(plaintext));
    }

    private void Export(ExportGroupKey export)
    {
        if (!Settings.Security.AllowKeyExport)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, KeyError.NotAuthorized, "key export is off"));
            return;
        }

        var (held, error) = Ring.Get(export.GroupId, export.Epoch, NowMs, TimeSpan.MaxValue);
        if (held is null)
        {
            Sender.Tell(new GroupKeyRefused(export.GroupId, export.Epoch, error!.Value, "epoch not held"));
            return;
        }

        Sender.Tell(new ExportedGroupKey(export.GroupId, export.Epoch, Identity.DeviceId, Identity.PublicKeys.Agreement,
            held.Key.WrapFor(Pairwise, export.RecipientId, export.RecipientAgreementKey)));
    }
}

/// <summary>Inside an entity: the CSKMF tells its SECA whose signature key replies must carry.</summary>
public sealed record TrustSigner(string SignerId, Octets SigningKey) : INodeLocal;
