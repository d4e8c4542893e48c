using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Polling;

/// <summary>Skip reasons reported on the <c>polllease.polls.skipped</c> metric.</summary>
internal static class SkipReasons
{
    public const string Uncertain = "uncertain";
    public const string NotOwned = "not-owned";
    public const string Paused = "paused";
    public const string Busy = "busy";
}

/// <summary>
/// Polls every session this instance owns at the session's interval. A poll starts only while its lease is
/// Owned (never Uncertain or Lost), is cancelled before the lease's validity deadline, and one failing session
/// never stops the others. Sessions that are removed, paused or lost simply stop being due.
/// </summary>
internal sealed class PollScheduler : IDisposable
{
    private readonly ILeaseView _leases;
    private readonly IPollHandler _handler;
    private readonly PollingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollMetrics _metrics;
    private readonly SemaphoreSlim _slots;
    private readonly Dictionary<string, Schedule> _schedules = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private readonly HashSet<Task> _running = [];
    private readonly BackgroundLoop _loop;

    public PollScheduler(
        ILeaseView leases,
        IPollHandler handler,
        PollingOptions options,
        TimeProvider time,
        ILogger logger,
        PollMetrics metrics)
    {
        _leases = leases;
        _handler = handler;
        _options = options;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        _loop = new BackgroundLoop(time);
    }

    /// <summary>Runs ticks until <paramref name="stopping"/> is cancelled, then waits for running polls to end.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        // Polls see the caller's token (it cancels them on stop); the passes run on the shared loop.
        _loop.Start(_ =>
        {
            Tick(stopping);
            return Task.FromResult(_options.Tick);
        }, e =>
        {
            PollLog.PassFailed(_logger, e, _leases.InstanceId);
            return _options.Tick;
        });
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _time, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopping: end the pass in flight (it sees the same token), then wait for the polls in flight.
        }
        await _loop.StopAsync(Timeout.InfiniteTimeSpan, CancellationToken.None).ConfigureAwait(false);
        await WhenIdleAsync().ConfigureAwait(false);
    }

    /// <summary>Runs the next scheduling pass now instead of at the next tick (passes never overlap).</summary>
    public void Wake() => _loop.Wake();

    public void Dispose() => _slots.Dispose();

    /// <summary>Completes when no poll is running.</summary>
    public Task WhenIdleAsync()
    {
        lock (_lock)
        {
            return Task.WhenAll(_running.ToArray());
        }
    }

    /// <summary>One scheduling pass: starts every due poll of an Owned session, within the concurrency bound.</summary>
    public void Tick(CancellationToken stopping)
    {
        var known = _leases.Sessions;
        var now = _time.GetTimestamp();
        var owned = _leases.OwnedSessions();
        var ownedIds = new HashSet<string>(owned.Select(l => l.SessionId), StringComparer.Ordinal);
        lock (_lock)
        {
            _running.RemoveWhere(t => t.IsCompleted);
            foreach (var gone in _schedules.Keys.Where(id => !ownedIds.Contains(id) || !known.ContainsKey(id)).ToList())
            {
                if (!_schedules[gone].Running)
                {
                    _schedules.Remove(gone);
                }
            }
        }

        foreach (var lease in owned)
        {
            if (!known.TryGetValue(lease.SessionId, out var session))
            {
                continue; // no longer among the sessions: the lease manager releases it in its next cycle
            }
            Schedule schedule;
            lock (_lock)
            {
                if (!_schedules.TryGetValue(lease.SessionId, out schedule!) || schedule.Token != lease.Token)
                {
                    schedule = new Schedule(lease.Token, FirstDue(session, lease.Token, now)) { Record = true };
                    _schedules[lease.SessionId] = schedule;
                }
                if (schedule.Running || now < schedule.NextDue)
                {
                    continue;
                }
            }
            if (session.Paused)
            {
                // Counted once per interval, not once per tick.
                Skip(session.Id, SkipReasons.Paused, schedule, now + Ticks(session.Interval));
                continue;
            }
            if (lease.State != LeaseState.Owned || _leases.TryGetLease(session.Id, out var current) is false || current.State != LeaseState.Owned)
            {
                Skip(session.Id, SkipReasons.Uncertain, schedule, now + Ticks(Min(session.Interval, TimeSpan.FromSeconds(1))));
                continue;
            }
            if (!_slots.Wait(0, CancellationToken.None))
            {
                Skip(session.Id, SkipReasons.Busy, schedule, now + Ticks(_options.Tick));
                continue;
            }
            var scheduledAt = schedule.NextDue;
            bool record;
            lock (_lock)
            {
                schedule.Running = true;
                var next = schedule.NextDue + Ticks(session.Interval);
                // After a long stall, do not fire a burst of missed polls: resume the cadence from now.
                schedule.NextDue = next > now ? next : now + Ticks(session.Interval);
                // The start is recorded in Redis (with the next lease cycle) only when the cadence's phase moved: a new
                // term, a skip, a late start. A later owner continues the cadence from the last recorded start.
                record = schedule.Record || now - scheduledAt > 2 * Ticks(_options.Tick) || next <= now;
                schedule.Record = false;
            }
            _leases.PollStarted(session.Id, lease.Token, now, record);
            var task = PollOneAsync(session, current, scheduledAt, schedule, stopping);
            lock (_lock)
            {
                _running.Add(task);
            }
        }
    }

    private async Task PollOneAsync(PollSession session, LeaseSnapshot lease, long scheduledAt, Schedule schedule, CancellationToken stopping)
    {
        var instance = _leases.InstanceId;
        var started = _time.GetTimestamp();
        try
        {
            var strict = _options.StrictOwnershipCheck || (session.Metadata.TryGetValue("critical", out var c) && string.Equals(c, "true", StringComparison.OrdinalIgnoreCase));
            if (strict && !await _leases.IsOwnedStrictAsync(session.Id, stopping).ConfigureAwait(false))
            {
                Skip(session.Id, SkipReasons.NotOwned);
                return;
            }
            // End the poll before the lease's local deadline, not only at the configured timeout.
            var budget = lease.ValidFor < _options.PollTimeout ? lease.ValidFor : _options.PollTimeout;
            if (budget <= TimeSpan.Zero)
            {
                Skip(session.Id, SkipReasons.Uncertain);
                return;
            }
            using var timeout = new CancellationTokenSource(budget, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, timeout.Token);
            PollLog.Started(_logger, _options.PollTraceLevel, instance, session.Id, lease.Token);
            _metrics.Started(_time.GetElapsedTime(scheduledAt, started));
            var context = new PollContext(session, lease.Token, instance, _time.GetUtcNow() - _time.GetElapsedTime(scheduledAt, started));
            PollOutcome outcome;
            try
            {
                outcome = await _handler.PollAsync(context, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !stopping.IsCancellationRequested)
            {
                outcome = PollOutcome.Failed($"timed out after {budget.TotalMilliseconds:0} ms");
            }
            var ok = outcome.Status != PollStatus.Failed;
            _metrics.Finished(ok, _time.GetElapsedTime(started));
            if (ok)
            {
                PollLog.Finished(_logger, instance, session.Id, lease.Token, outcome.Status, outcome.Detail);
            }
            else
            {
                PollLog.Failed(_logger, null, instance, session.Id, lease.Token, outcome.Detail ?? "failed");
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            _metrics.Finished(false, _time.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            // A handler's exception is that session's failure, never the scheduler's.
            _metrics.Finished(false, _time.GetElapsedTime(started));
            PollLog.Failed(_logger, e, instance, session.Id, lease.Token, e.Message);
        }
        finally
        {
            lock (_lock)
            {
                schedule.Running = false;
            }
            _slots.Release();
        }
    }

    private void Skip(string sessionId, string reason, Schedule schedule, long retryAt)
    {
        lock (_lock)
        {
            schedule.NextDue = retryAt;
            schedule.Record = true;
        }
        Skip(sessionId, reason);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// When a new lease's first poll is due. When the session's previous poll (by any owner) is known, the cadence
    /// continues: the first slot of <c>previous + k x interval</c> (k at least 1) that is not already past, so a
    /// handover never brings a poll sooner than one interval after the previous one. Otherwise after a small random
    /// jitter, so sessions taken over together do not all poll in the same instant.
    /// </summary>
    private long FirstDue(PollSession session, long token, long now)
    {
        var interval = Ticks(session.Interval);
        if (interval > 0 && _leases.TryGetPreviousPoll(session.Id, token, out var previous))
        {
            var next = previous + interval;
            return next >= now ? next : next + ((now - next + interval - 1) / interval * interval);
        }
        return now + Ticks(TimeSpan.FromTicks((long)(session.Interval.Ticks * _options.Jitter * Random.Shared.NextDouble())));
    }

    private void Skip(string sessionId, string reason)
    {
        _metrics.Skipped(reason);
        PollLog.Skipped(_logger, _leases.InstanceId, sessionId, reason);
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private sealed class Schedule(long token, long nextDue)
    {
        public long Token { get; } = token;

        public long NextDue { get; set; } = nextDue;

        public bool Running { get; set; }

        /// <summary>The next poll starts off the cadence the last recorded start implies: record it.</summary>
        public bool Record { get; set; }
    }
}
