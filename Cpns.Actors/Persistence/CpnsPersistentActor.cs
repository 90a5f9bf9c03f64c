using Akka.Event;
using Akka.Persistence;

namespace Cpns.Actors.Persistence;

/// <summary>
/// Base of the enabler's event-sourced actors: picks the journal and snapshot plugins from the settings and
/// snapshots every <see cref="CpnsSettings.SnapshotEvery"/> events so recovery stays fast.
/// </summary>
public abstract class CpnsPersistentActor : UntypedPersistentActor
{
    protected CpnsPersistentActor(CpnsSettings settings)
    {
        Settings = settings;
        if (!string.IsNullOrEmpty(settings.Persistence.JournalPlugin))
            JournalPluginId = settings.Persistence.JournalPlugin;
        if (!string.IsNullOrEmpty(settings.Persistence.SnapshotPlugin))
            SnapshotPluginId = settings.Persistence.SnapshotPlugin;
    }

    protected CpnsSettings Settings { get; }

    protected abstract object CreateSnapshot();

    protected void SnapshotIfDue()
    {
        if (Settings.Persistence.SnapshotEvery > 0 && LastSequenceNr % Settings.Persistence.SnapshotEvery == 0)
            SaveSnapshot(CreateSnapshot());
    }

    /// <summary>Handles the snapshot-store replies; returns false for any other message.</summary>
    protected bool HandleSnapshotReplies(object message)
    {
        switch (message)
        {
            case SaveSnapshotSuccess success:
                DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1));
                return true;
            case SaveSnapshotFailure failure:
                Log.Warning(failure.Cause, "snapshot of {0} failed; recovery will replay more events", PersistenceId);
                return true;
            case DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                return true;
            default:
                return false;
        }
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        Log.Error(cause, "could not persist {0} (seq {1}) of {2}; stopping, nothing was acknowledged", @event.GetType().Name,
            sequenceNr, PersistenceId);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }
}
