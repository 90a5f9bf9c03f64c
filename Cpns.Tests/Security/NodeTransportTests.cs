using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote;
using Cpns.Actors.Distributed;
using Cpns.Actors.Security;
using Cpns.Tests.Support;
using Xunit;

namespace Cpns.Tests.Security;

/// <summary>
/// The node transport over real TCP on 127.0.0.1: a node with a certificate of the deployment CA. A process of the same
/// deployment reaches its actors; a process without a certificate, or with one from another CA, cannot associate, and
/// nothing it sends arrives.
/// </summary>
public sealed class NodeTransportTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly TempFolder _pki = new("cpns-pki");
    private readonly NodeTransport _node;
    private readonly ActorSystem _nodeSystem;
    private readonly List<ActorSystem> _others = new();
    private readonly ConcurrentQueue<object> _received = new();
    private readonly string _target;

    public NodeTransportTests()
    {
        _node = NodeTransport.LoadOrIssue(_pki.File("tls"), "node-1", createAuthority: true).Transport;
        _nodeSystem = System(_node);
        _nodeSystem.ActorOf(Props.Create(() => new Forwarder(_received)), "target");
        var self = ((ExtendedActorSystem)_nodeSystem).Provider.DefaultAddress;
        Assert.Equal(NodeTransport.Scheme, self.Protocol);
        _target = $"{self}/user/target";
    }

    private static ActorSystem System(NodeTransport? transport) => RemoteSystems.Start(transport);

    private ActorSystem Other(NodeTransport? transport)
    {
        var system = System(transport);
        _others.Add(system);
        return system;
    }

    public void Dispose()
    {
        foreach (var system in _others.Append(_nodeSystem))
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
        _pki.Dispose();
    }

    [Fact]
    public async Task A_process_of_the_same_deployment_reaches_the_node()
    {
        var peer = NodeTransport.LoadOrIssue(_node.Deployment.Folder, "node-2", createAuthority: false).Transport;
        var client = Other(peer);

        var answer = await client.ActorSelection(_target).Ask<string>("hello", Patience);

        Assert.Equal("hello", answer);
        Assert.Equal(["hello"], _received);
        Assert.Equal(0, _node.Refused);
    }

    [Fact]
    public async Task A_process_without_a_certificate_cannot_associate_and_nothing_it_sends_arrives()
    {
        var attacker = Other(null);
        var failed = new TaskCompletionSource<AssociationErrorEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        attacker.EventStream.Subscribe(attacker.ActorOf(Props.Create(() => new Forwarder(failed))), typeof(AssociationErrorEvent));
        var plainAddress = _target.Replace(NodeTransport.Scheme + "://", "akka.tcp://");

        attacker.ActorSelection(plainAddress).Tell("forged");

        var error = await failed.Task.WaitAsync(Patience);
        Assert.Equal(plainAddress[..plainAddress.IndexOf("/user", StringComparison.Ordinal)], error.RemoteAddress.ToString());
        Assert.Empty(_received);
    }

    [Fact]
    public async Task A_process_with_a_certificate_from_another_CA_is_refused_by_the_node_and_nothing_arrives()
    {
        using var elsewhere = new TempFolder("cpns-other-pki");
        // Same node name and subject as a real node of the deployment: only the CA differs.
        var impostor = NodeTransport.LoadOrIssue(elsewhere.Path, "node-2", createAuthority: true).Transport;
        var attacker = Other(impostor);

        var asked = attacker.ActorSelection(_target).Ask<string>("forged", TimeSpan.FromSeconds(3));

        var clock = global::System.Diagnostics.Stopwatch.StartNew();
        while (_node.Refused == 0 && clock.Elapsed < Patience)
            await Task.Delay(20);
        Assert.True(_node.Refused > 0, "the node refused the impostor's certificate");
        await Assert.ThrowsAsync<AskTimeoutException>(() => asked);
        Assert.Empty(_received);
    }

    [Fact]
    public void A_node_certificate_of_another_deployment_does_not_load_as_this_deployments()
    {
        using var elsewhere = new TempFolder("cpns-other-pki");
        var other = DeploymentCertificates.CreateAuthority(elsewhere.Path);
        other.IssueNode("node-9");
        File.Copy(elsewhere.File(DeploymentCertificates.NodeFile("node-9")),
            Path.Combine(_node.Deployment.Folder, DeploymentCertificates.NodeFile("node-9")));

        var refused = Assert.Throws<InvalidDataException>(() => _node.Deployment.LoadNode("node-9"));
        Assert.Contains("is not a certificate of the deployment CA", refused.Message);
    }

    [Fact]
    [global::System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_CA_is_never_replaced_and_secrets_are_owner_only()
    {
        Assert.Throws<InvalidOperationException>(() => DeploymentCertificates.CreateAuthority(_node.Deployment.Folder));
        foreach (var secret in new[] { DeploymentCertificates.CaKeyFile, DeploymentCertificates.NodeFile("node-1") })
        {
            var mode = File.GetUnixFileMode(Path.Combine(_node.Deployment.Folder, secret));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
        }
    }

    private sealed class Forwarder : ReceiveActor
    {
        public Forwarder(ConcurrentQueue<object> received)
        {
            ReceiveAny(message =>
            {
                received.Enqueue(message);
                Sender.Tell(message);
            });
        }

        public Forwarder(TaskCompletionSource<AssociationErrorEvent> failed)
        {
            Receive<AssociationErrorEvent>(e => failed.TrySetResult(e));
        }
    }
}
