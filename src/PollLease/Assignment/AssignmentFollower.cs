using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Assignment;

/// <summary>
/// Keeps an instance on the janitor's latest <see cref="PublishedAssignment"/>: reloads it when the
/// <c>assignment|version</c> event arrives and, in case an event was missed (pub/sub is at most once), checks the
/// version key every <c>checkInterval</c>. Runs beside the lease loop, so lease cycles stay one round trip.
/// </summary>
internal sealed class AssignmentFollower
{
    private readonly AssignmentStore _store;
    private readonly Action<PublishedAssignment?> _changed;
    private readonly TimeSpan _checkInterval;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _instanceId;
    private readonly BackgroundLoop _loop;
    private long _version = -1;

    public AssignmentFollower(AssignmentStore store, Action<PublishedAssignment?> changed, TimeSpan checkInterval, TimeSpan timeout, TimeProvider time, ILogger logger, string instanceId)
    {
        _store = store;
        _changed = changed;
        _checkInterval = checkInterval;
        _timeout = timeout;
        _time = time;
        _logger = logger;
        _instanceId = instanceId;
        _loop = new BackgroundLoop(time);
    }

    /// <summary>The version of the assignment followed; 0 when none is published, -1 before the first read.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>An <c>assignment|version</c> event arrived: reload now.</summary>
    public void Signal() => _loop.Wake();

    /// <summary>Loads the current assignment once (so the first plan already follows it), then follows it in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        _loop.Start(async ct =>
        {
            await RefreshAsync(ct).ConfigureAwait(false);
            return _checkInterval;
        }, e =>
        {
            AssignmentLog.ReadFailed(_logger, e, _instanceId);
            return _checkInterval;
        }, firstDelay: _checkInterval);
    }

    /// <summary>Stops following; a read in flight ends at once (it sees the cancellation) or within its timeout.</summary>
    public async Task StopAsync()
    {
        if (!await _loop.StopAsync(_timeout).ConfigureAwait(false))
        {
            AssignmentLog.ReadFailed(_logger, new TimeoutException($"The assignment read in flight did not end within {_timeout}."), _instanceId);
        }
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_timeout);
            var version = await _store.ReadVersionAsync(timeout.Token).ConfigureAwait(false);
            if (version == Version)
            {
                return;
            }
            var (read, assignment, error) = await _store.ReadAsync(timeout.Token).ConfigureAwait(false);
            if (error is not null)
            {
                AssignmentLog.Malformed(_logger, _instanceId, read, error);
            }
            else if (assignment is not null)
            {
                AssignmentLog.Followed(_logger, _instanceId, read, assignment.Owners.Count);
            }
            Interlocked.Exchange(ref _version, read);
            _changed(assignment);
        }
        catch (Exception e) when (e is RedisException or TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            AssignmentLog.ReadFailed(_logger, e, _instanceId);
        }
    }
}
