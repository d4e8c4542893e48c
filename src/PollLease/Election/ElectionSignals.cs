using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Election;

/// <summary>
/// What an election hears besides its own calls: the connection dropping and coming back (a leader leads at most a
/// grace period while disconnected), and another candidate's <c>leader-released|id|role</c> announcement, on which a
/// follower stands at once instead of at its next periodic check.
/// </summary>
internal sealed class ElectionSignals(IConnectionMultiplexer redis, Leadership leadership, Action wake, ElectionContext c)
{
    private ChannelMessageQueue? _subscription;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        redis.ConnectionFailed += OnConnectionFailed;
        redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            _subscription = await redis.GetSubscriber().SubscribeAsync(new RedisKeys(c.Options.KeyPrefix).Events)
                .WaitAsync(c.Options.OperationTimeout, c.Time, cancellationToken).ConfigureAwait(false);
            _subscription.OnMessage(OnFleetEvent);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Without the subscription followers still notice a released key at their next periodic check.
            ElectionLog.StoreFailed(c.Logger, e, c.Role, c.InstanceId, "subscribe", 1);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        redis.ConnectionFailed -= OnConnectionFailed;
        redis.ConnectionRestored -= OnConnectionRestored;
        if (_subscription is null)
        {
            return;
        }
        try
        {
            await _subscription.UnsubscribeAsync().WaitAsync(c.Options.OperationTimeout, c.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            ElectionLog.StoreFailed(c.Logger, e, c.Role, c.InstanceId, "unsubscribe", 1);
        }
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            var leading = leadership.Disconnected();
            ElectionLog.Disconnected(c.Logger, c.Role, c.InstanceId, leading, c.Options.DisconnectGracePeriod);
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            leadership.Restored();
            ElectionLog.Reconnected(c.Logger, c.Role, c.InstanceId);
            // The next step renews (leader: verifies the key is still ours, else demotes) or stands (follower) at once.
            wake();
        }
    }

    private void OnFleetEvent(ChannelMessage message)
    {
        var parts = message.Message.ToString().Split('|');
        if (parts.Length == 3 && parts[0] == "leader-released" && parts[2] == c.Role && parts[1] != c.InstanceId)
        {
            wake();
        }
    }
}
