using Cpns.Actors.Protocol;

namespace Cpns.Actors.Security;

/// <summary>What a device's applications received, opened by its CSKMF: the latest <see cref="Kept"/> items, oldest first.</summary>
public sealed class ContentInbox
{
    public const int Kept = 1000;

    private readonly Queue<ReceivedItem> _items = new();

    public IReadOnlyList<ReceivedItem> Items => _items.ToList();

    /// <summary>Keeps what <paramref name="decryptAnswer"/> (the CSKMF's answer to a decryption) made of a delivery.</summary>
    public ReceivedItem Keep(string deliveryId, string serviceId, GroupCiphertext ciphertext, object decryptAnswer)
    {
        var item = decryptAnswer is ContentDecrypted decrypted
            ? new ReceivedItem(deliveryId, serviceId, ciphertext.GroupId, ciphertext.Epoch, ciphertext.SenderId, decrypted.Plaintext, null)
            : new ReceivedItem(deliveryId, serviceId, ciphertext.GroupId, ciphertext.Epoch, ciphertext.SenderId, null,
                (decryptAnswer as ContentRefused)?.Error ?? KeyError.IntegrityFailure);
        _items.Enqueue(item);
        if (_items.Count > Kept)
            _items.Dequeue();
        return item;
    }
}
