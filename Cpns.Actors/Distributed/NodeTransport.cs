using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;
using Cpns.Actors.Security;

namespace Cpns.Actors.Distributed;

/// <summary>
/// Akka.Remote between cluster nodes over mutual TLS: every node presents its certificate from the deployment CA and
/// accepts a peer only if the peer's certificate chains to that same CA. A process without such a certificate cannot
/// associate with any node, in either direction. In-process use (simulate, single-system tests) needs none of this.
/// </summary>
public sealed class NodeTransport
{
    private long _refused;

    private NodeTransport(DeploymentCertificates deployment, X509Certificate2 certificate)
    {
        Deployment = deployment;
        Certificate = certificate;
    }

    public DeploymentCertificates Deployment { get; }

    public X509Certificate2 Certificate { get; }

    /// <summary>TLS peers this node refused because their certificate is not from the deployment CA.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The address scheme of a node on the TLS transport.</summary>
    public const string Scheme = "akka.ssl.tcp";

    /// <summary>
    /// A node address as the TLS transport knows it: <c>akka.tcp://cpns@host:port</c>, the plain form people write, is taken
    /// to mean the same node (every node of a deployment runs TLS).
    /// </summary>
    public static string NodeAddress(string given) =>
        given.StartsWith("akka.tcp://", StringComparison.Ordinal) ? Scheme + given["akka.tcp".Length..] : given;

    /// <summary>What a node's configuration needs on top of <c>hocon/cluster.conf</c> for TLS.</summary>
    public static Config Hocon { get; } = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true");

    /// <summary>The node certificate <paramref name="nodeName"/> of the deployment whose certificates are in <paramref name="folder"/>.</summary>
    public static NodeTransport Load(string folder, string nodeName)
    {
        var deployment = DeploymentCertificates.Open(folder);
        return new NodeTransport(deployment, deployment.LoadNode(nodeName));
    }

    /// <summary>
    /// As <see cref="Load"/>, but on a machine where the operator keeps the CA key in <paramref name="folder"/> a missing
    /// node certificate is issued first, and with <paramref name="createAuthority"/> a missing CA is made (the first
    /// server node of a new deployment). Returns what was made, for the node to say so.
    /// </summary>
    public static (NodeTransport Transport, string? Made) LoadOrIssue(string folder, string nodeName, bool createAuthority,
        IEnumerable<string>? hostnames = null)
    {
        string? made = null;
        if (!DeploymentCertificates.ExistIn(folder))
        {
            if (!createAuthority)
                throw new FileNotFoundException(
                    $"no deployment certificates in {folder}: start the server node with this data folder first, or run " +
                    $"`cpns certs --certs {folder} --node {nodeName}` and copy ca.crt and {DeploymentCertificates.NodeFile(nodeName)} here");
            DeploymentCertificates.CreateAuthority(folder);
            made = $"a new deployment CA in {folder}";
        }

        var deployment = DeploymentCertificates.Open(folder);
        if (!deployment.HasNode(nodeName))
        {
            if (!deployment.CanIssue)
                throw new FileNotFoundException(
                    $"no certificate for node '{nodeName}' in {folder}: issue one with `cpns certs --node {nodeName}` where the " +
                    $"CA key is kept and copy {DeploymentCertificates.NodeFile(nodeName)} here");
            deployment.IssueNode(nodeName, hostnames);
            made = made is null ? $"a certificate for node '{nodeName}'" : $"{made} and a certificate for node '{nodeName}'";
        }

        return (new NodeTransport(deployment, deployment.LoadNode(nodeName)), made);
    }

    /// <summary>The Akka setup that turns the DotNetty transport's TLS on with this node's certificate and the CA check.</summary>
    public Setup SslSetup() => new DotNettySslSetup(Certificate, suppressValidation: false, requireMutualAuthentication: true,
        validateCertificateHostname: false, customValidator: Accept);

    private bool Accept(X509Certificate2? certificate, X509Chain? chain, string remotePeer, SslPolicyErrors errors, ILoggingAdapter? log)
    {
        if (certificate is null)
        {
            Interlocked.Increment(ref _refused);
            log?.Warning("refused TLS peer {0}: it presented no certificate", remotePeer);
            return false;
        }

        if (Deployment.IsIssuedBy(certificate, out var problem))
            return true;
        Interlocked.Increment(ref _refused);
        log?.Warning("refused TLS peer {0} ({1}): {2}", remotePeer, certificate.Subject, problem);
        return false;
    }
}
