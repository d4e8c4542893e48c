using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PollLease.Coordination;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Tests.Polling;

/// <summary>The scheduler on a fake clock with a hand-set lease state (pure scheduling logic, no Redis involved).</summary>
public sealed class PollSchedulerTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch.AddDays(20_000));
    private readonly Dictionary<string, PollSession> _sessions = new(StringComparer.Ordinal);
    private readonly LeaseTable _leases;
    private readonly RecordingHandler _handler = new();
    private readonly PollScheduler _scheduler;

    public PollSchedulerTests()
    {
        _leases = new LeaseTable(_sessions);
        _scheduler = new PollScheduler(
            _leases,
            _handler,
            new PollingOptions { Jitter = 0, MaxConcurrency = 4, PollTimeout = TimeSpan.FromSeconds(30) },
            _time,
            NullLogger.Instance,
            new PollMetrics(null, "node-a"));
    }

    public void Dispose() => _scheduler.Dispose();

    private void AddSession(string id, int intervalSeconds = 5, bool paused = false, long token = 7)
    {
        _sessions[id] = new PollSession(id, "target-" + id, TimeSpan.FromSeconds(intervalSeconds), paused, new Dictionary<string, string>());
        _leases.Set(id, token, LeaseState.Owned, TimeSpan.FromSeconds(60));
    }

    private async Task TickAsync()
    {
        _scheduler.Tick(CancellationToken.None);
        await _scheduler.WhenIdleAsync();
    }

    [Fact]
    public async Task Polls_each_owned_session_at_its_interval_with_its_token()
    {
        AddSession("s1", 5, token: 42);
        AddSession("s2", 10);

        await TickAsync();
        _time.Advance(TimeSpan.FromSeconds(4.9));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));
        _time.Advance(TimeSpan.FromSeconds(0.1));
        await TickAsync();
        _time.Advance(TimeSpan.FromSeconds(5));
        await TickAsync();

        Assert.Equal(3, _handler.Count("s1"));
        Assert.Equal(2, _handler.Count("s2"));
        Assert.All(_handler.Calls.Where(c => c.Session.Id == "s1"), c => Assert.Equal(42, c.Token));
        Assert.All(_handler.Calls, c => Assert.Equal("node-a", c.InstanceId));
    }

    [Fact]
    public async Task Paused_sessions_are_never_polled()
    {
        AddSession("s1", paused: true);
        for (var i = 0; i < 10; i++)
        {
            await TickAsync();
            _time.Advance(TimeSpan.FromSeconds(5));
        }
        Assert.Equal(0, _handler.Count("s1"));
    }

    [Fact]
    public async Task A_session_removed_mid_run_stops_at_the_next_tick()
    {
        AddSession("s1");
        await TickAsync();
        _sessions.Remove("s1");
        _time.Advance(TimeSpan.FromSeconds(5));
        await TickAsync();
        _time.Advance(TimeSpan.FromSeconds(5));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));
    }

    [Fact]
    public async Task Nothing_is_polled_while_the_lease_is_uncertain_or_lost()
    {
        AddSession("s1");
        _leases.Set("s1", 7, LeaseState.Uncertain, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 5; i++)
        {
            await TickAsync();
            _time.Advance(TimeSpan.FromSeconds(5));
        }
        Assert.Equal(0, _handler.Count("s1"));

        _leases.Set("s1", 7, LeaseState.Owned, TimeSpan.FromSeconds(10));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));

        _leases.Remove("s1");
        _time.Advance(TimeSpan.FromSeconds(5));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));
    }

    [Fact]
    public async Task A_failing_handler_does_not_stop_other_sessions()
    {
        AddSession("bad");
        AddSession("good");
        _handler.Throw.Add("bad");
        for (var i = 0; i < 3; i++)
        {
            await TickAsync();
            _time.Advance(TimeSpan.FromSeconds(5));
        }
        Assert.Equal(3, _handler.Count("bad"));
        Assert.Equal(3, _handler.Count("good"));
    }

    [Fact]
    public async Task A_poll_is_cancelled_before_the_lease_deadline()
    {
        AddSession("s1");
        _leases.Set("s1", 7, LeaseState.Owned, TimeSpan.FromSeconds(2));
        _handler.Block.Add("s1");

        _scheduler.Tick(CancellationToken.None);
        await _handler.Entered.Task;
        _time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(_scheduler.WhenIdleAsync().IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(0.1));
        await _scheduler.WhenIdleAsync();

        Assert.True(_handler.Cancelled.TryGetValue("s1", out var cancelled) && cancelled);
    }

    [Fact]
    public async Task Concurrency_is_bounded()
    {
        for (var i = 0; i < 10; i++)
        {
            AddSession($"s{i}");
            _handler.Block.Add($"s{i}");
        }
        _scheduler.Tick(CancellationToken.None);
        Assert.Equal(4, _handler.Calls.Count);
        _handler.Release();
        await _scheduler.WhenIdleAsync();
    }

    [Fact]
    public async Task A_new_owner_continues_the_previous_owners_cadence_and_never_polls_sooner_than_one_interval_after_it()
    {
        AddSession("s1", 5, token: 8);
        _leases.Previous[("s1", 8)] = _time.GetTimestamp() - Seconds(3); // the previous owner polled 3 s ago

        await TickAsync();
        _time.Advance(TimeSpan.FromSeconds(1.99));
        await TickAsync();
        Assert.Equal(0, _handler.Count("s1"));
        _time.Advance(TimeSpan.FromSeconds(0.01));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));
    }

    [Fact]
    public async Task A_session_unpolled_for_several_intervals_is_polled_at_the_next_slot_of_its_cadence()
    {
        AddSession("s1", 5, token: 8);
        // The previous poll was 12 s ago; the previous owner may have polled at 7 s and 2 s ago without recording it
        // (starts on the cadence are not recorded), so the next slot is 3 s from now.
        _leases.Previous[("s1", 8)] = _time.GetTimestamp() - Seconds(12);

        await TickAsync();
        _time.Advance(TimeSpan.FromSeconds(2.9));
        await TickAsync();
        Assert.Equal(0, _handler.Count("s1"));
        _time.Advance(TimeSpan.FromSeconds(0.1));
        await TickAsync();
        Assert.Equal(1, _handler.Count("s1"));
    }

    [Fact]
    public async Task Poll_starts_are_recorded_only_when_the_cadence_moves()
    {
        AddSession("s1", 5);
        for (var i = 0; i < 3; i++)
        {
            await TickAsync();
            _time.Advance(TimeSpan.FromSeconds(5));
        }
        // A skip moves the cadence: the next start is recorded again.
        _leases.Set("s1", 7, LeaseState.Uncertain, TimeSpan.FromSeconds(60));
        await TickAsync();
        _leases.Set("s1", 7, LeaseState.Owned, TimeSpan.FromSeconds(60));
        _time.Advance(TimeSpan.FromSeconds(1));
        await TickAsync();

        Assert.Equal([true, false, false, true], _leases.Started.Select(s => s.Record));
        Assert.All(_leases.Started, s => Assert.Equal(7, s.Token));
    }

    private long Seconds(double s) => (long)(s * _time.TimestampFrequency);

    /// <summary>The lease manager's view, with the sessions the test set (a copy per pass, as a cycle's answer would be).</summary>
    private sealed class LeaseTable(Dictionary<string, PollSession> sessions) : ILeaseView
    {
        private readonly ConcurrentDictionary<string, LeaseSnapshot> _leases = new();

        public string InstanceId => "node-a";

        public IReadOnlyDictionary<string, PollSession> Sessions => new Dictionary<string, PollSession>(sessions);

        public void Set(string id, long token, LeaseState state, TimeSpan validFor) =>
            _leases[id] = new LeaseSnapshot(id, token, state, validFor, DateTimeOffset.UnixEpoch);

        public void Remove(string id) => _leases.TryRemove(id, out _);

        public bool TryGetLease(string sessionId, out LeaseSnapshot lease) => _leases.TryGetValue(sessionId, out lease);

        public IReadOnlyList<LeaseSnapshot> OwnedSessions() => _leases.Values.ToArray();

        public Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken) =>
            Task.FromResult(_leases.TryGetValue(sessionId, out var l) && l.State == LeaseState.Owned);

        public ConcurrentQueue<(string Session, long Token, long At, bool Record)> Started { get; } = new();

        public ConcurrentDictionary<(string, long), long> Previous { get; } = new();

        public void PollStarted(string sessionId, long token, long at, bool record) => Started.Enqueue((sessionId, token, at, record));

        public bool TryGetPreviousPoll(string sessionId, long token, out long at) => Previous.TryGetValue((sessionId, token), out at);
    }

    private sealed class RecordingHandler : IPollHandler
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<PollContext> Calls { get; } = new();

        public HashSet<string> Throw { get; } = [];

        public HashSet<string> Block { get; } = [];

        public ConcurrentDictionary<string, bool> Cancelled { get; } = new();

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count(string id) => Calls.Count(c => c.Session.Id == id);

        public void Release() => _release.TrySetResult();

        public async Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken)
        {
            Calls.Enqueue(context);
            if (Throw.Contains(context.Session.Id))
            {
                throw new InvalidOperationException("handler bug");
            }
            if (Block.Contains(context.Session.Id))
            {
                Entered.TrySetResult();
                try
                {
                    await _release.Task.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Cancelled[context.Session.Id] = true;
                    throw;
                }
            }
            return PollOutcome.Unchanged();
        }
    }
}
