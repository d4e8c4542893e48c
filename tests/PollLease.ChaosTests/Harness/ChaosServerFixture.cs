using Xunit.Abstractions;
using Xunit.Sdk;

namespace PollLease.ChaosTests.Harness;

/// <summary>
/// Says in the test output (an xunit diagnostic message) which server the class's <see cref="RedisChild"/> servers
/// are: redis-server when it is on PATH and not hidden, else the embedded Garnet server run as `pollctl server`.
/// </summary>
public sealed class ChaosServerFixture
{
    public ChaosServerFixture(IMessageSink diagnostics)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var redisServer = RedisServerBinary.Find();
        diagnostics.OnMessage(new DiagnosticMessage(redisServer is not null
            ? $"ChaosServerFixture: redis-server ({redisServer}) children"
            : $"ChaosServerFixture: garnet (pollctl server) children (fallback: {RedisServerBinary.MissingReason})"));
    }
}
