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
    private readonly WakeSignal _wake = new();
    private long _version = -1;
    private CancellationTokenSource? _cts;
    private Task? _loop;

    public AssignmentFollower(AssignmentStore store, Action<PublishedAssignment?> changed, TimeSpan checkInterval, TimeSpan timeout, TimeProvider time, ILogger logger, string instanceId)
    {
        _store = store;
        _changed = changed;
        _checkInterval = checkInterval;
        _timeout = timeout;
        _time = time;
        _logger = logger;
        _instanceId = instanceId;
    }

    /// <summary>The version of the assignment followed; 0 when none is published, -1 before the first read.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>An <c>assignment|version</c> event arrived: reload now.</summary>
    public void Signal() => _wake.Set();

    /// <summary>Loads the current assignment once (so the first plan already follows it), then follows it in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        var cts = new CancellationTokenSource();
        _cts = cts;
        _loop = Task.Run(() => LoopAsync(cts.Token), CancellationToken.None);
    }

    public async Task StopAsync()
    {
        var cts = _cts;
        var loop = _loop;
        _cts = null;
        _loop = null;
        if (cts is null)
        {
            return;
        }
        await cts.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }
        cts.Dispose();
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await _wake.WaitAsync(_checkInterval, _time, cancellationToken).ConfigureAwait(false);
                await RefreshAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped with the lease manager.
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
