using Microsoft.Extensions.Logging;
using PollLease.Assignment;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// Listens to the fleet for one lease manager: the events channel (applied to its <see cref="LeaseTable"/>) and,
/// with a balanced planner, the published assignment. Either wakes the cycle loop, so a change is acted on now
/// rather than at the next cycle.
/// </summary>
internal sealed class FleetListener
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly LeaseTable _table;
    private readonly string _instanceId;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action _wake;
    private readonly AssignmentFollower? _follower;
    private ChannelMessageQueue? _subscription;

    public FleetListener(IConnectionMultiplexer redis, RedisKeys keys, LeaseTable table, ILeasePlanner planner, PollLeaseOptions options,
        string instanceId, TimeProvider time, ILogger logger, Action wake)
    {
        (_redis, _keys, _table, _instanceId, _time, _logger, _wake) = (redis, keys, table, instanceId, time, logger, wake);
        if (planner is BalancedPlanner balanced)
        {
            _follower = new AssignmentFollower(new AssignmentStore(redis, keys), published =>
            {
                balanced.UseBase(published);
                wake();
            }, LeaseManager.AssignmentCheckInterval, options.OperationTimeout, time, logger, instanceId);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _subscription = await _redis.GetSubscriber().SubscribeAsync(_keys.Events).ConfigureAwait(false);
            _subscription.OnMessage(m => React(FleetEvents.Apply(_table, _instanceId, m.Message.ToString(), _time.GetTimestamp())));
        }
        catch (RedisException e)
        {
            // The cycle still learns everything an event says, only a cycle later.
            LeaseLog.CycleFailed(_logger, e, _instanceId, 0);
        }
        if (_follower is not null)
        {
            // The first plan already follows the fleet's published assignment: a joining instance takes only its share.
            await _follower.StartAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task StopAsync()
    {
        await (_follower?.StopAsync() ?? Task.CompletedTask).ConfigureAwait(false);
        try
        {
            await (_subscription?.UnsubscribeAsync() ?? Task.CompletedTask).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or ObjectDisposedException)
        {
            LeaseLog.CycleFailed(_logger, e, _instanceId, 0);
        }
        _subscription = null;
    }

    private void React(FleetEvents.Reaction reaction)
    {
        if (reaction == FleetEvents.Reaction.Assignment)
        {
            _follower?.Signal(); // it reloads and wakes the cycle once the new assignment is in
        }
        else if (reaction == FleetEvents.Reaction.Wake)
        {
            _wake();
        }
    }
}
