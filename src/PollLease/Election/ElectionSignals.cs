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
internal sealed class ElectionSignals
{
    private readonly IConnectionMultiplexer _redis;
    private readonly ElectionOptions _options;
    private readonly Leadership _leadership;
    private readonly Action _wake;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private ChannelMessageQueue? _subscription;

    public ElectionSignals(IConnectionMultiplexer redis, ElectionOptions options, Leadership leadership, Action wake, TimeProvider time, ILogger logger)
    {
        _redis = redis;
        _options = options;
        _leadership = leadership;
        _wake = wake;
        _time = time;
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _redis.ConnectionFailed += OnConnectionFailed;
        _redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            _subscription = await _redis.GetSubscriber().SubscribeAsync(new RedisKeys(_options.KeyPrefix).Events)
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            _subscription.OnMessage(OnFleetEvent);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Without the subscription followers still notice a released key at their next periodic check.
            ElectionLog.StoreFailed(_logger, e, _options.Role, _options.InstanceId, "subscribe", 1);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _redis.ConnectionFailed -= OnConnectionFailed;
        _redis.ConnectionRestored -= OnConnectionRestored;
        if (_subscription is null)
        {
            return;
        }
        try
        {
            await _subscription.UnsubscribeAsync().WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            ElectionLog.StoreFailed(_logger, e, _options.Role, _options.InstanceId, "unsubscribe", 1);
        }
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            var leading = _leadership.Disconnected();
            ElectionLog.Disconnected(_logger, _options.Role, _options.InstanceId, leading, _options.DisconnectGracePeriod);
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            _leadership.Restored();
            ElectionLog.Reconnected(_logger, _options.Role, _options.InstanceId);
            // The next step renews (leader: verifies the key is still ours, else demotes) or stands (follower) at once.
            _wake();
        }
    }

    private void OnFleetEvent(ChannelMessage message)
    {
        var parts = message.Message.ToString().Split('|');
        if (parts.Length == 3 && parts[0] == "leader-released" && parts[2] == _options.Role && parts[1] != _options.InstanceId)
        {
            _wake();
        }
    }
}
