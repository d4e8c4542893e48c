using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// Sends lease cycles (<see cref="CycleScript"/>) for one instance and keeps the estimate of server time that
/// bounds when a call may still act (the script's LATE check).
/// </summary>
internal sealed class LeaseStore
{
    private readonly IConnectionMultiplexer _redis;
    private readonly CycleContext _context;
    private readonly long _lateAfterMs;
    private readonly object _anchorLock = new();
    private readonly object _sendLock = new();
    private bool _closed;
    private long _anchorServerMs;
    private long _anchorTimestamp;

    public LeaseStore(IConnectionMultiplexer redis, RedisKeys keys, string instanceId, PollLeaseOptions options, string metadata = "{}")
    {
        _redis = redis;
        Keys = keys;
        _context = new CycleContext(keys, instanceId, (long)options.LeaseTtl.TotalMilliseconds,
            (long)options.HeartbeatTtl.TotalMilliseconds, (long)KeyTtl(options).TotalMilliseconds, metadata);
        // The caller's own timeout: a call executed later than this is one its caller has already counted as failed.
        // (A call executed in time whose answer is slower still is not caught here; the local deadline covers it.)
        _lateAfterMs = (long)options.OperationTimeout.TotalMilliseconds;
    }

    public RedisKeys Keys { get; }

    /// <summary>The fleet's data epoch as of the last answer ('' before the first): sent with every call (<see cref="DataLossGuard"/>).</summary>
    public string Epoch { get; private set; } = "";

    /// <summary>
    /// Safety PX of lease keys: 120 lease TTLs (1 h at the default 30 s). Validity comes from the heartbeat; this only
    /// bounds how long the keys of a fleet that died stay behind, and every held key is refreshed well within it.
    /// </summary>
    public static TimeSpan KeyTtl(PollLeaseOptions options) => options.LeaseTtl * 120;

    public async Task<CycleResponse> RunAsync(CycleRequest request)
    {
        // Leaving is harmless however late; anything that heartbeats or acquires must not act after its caller
        // stopped waiting for the answer.
        var notAfter = request.Heartbeat == HeartbeatMode.Deregister ? 0 : NotAfterServerMs();
        var (keys, args) = CycleScript.Build(_context, request, notAfter, Epoch);
        var sent = Stopwatch.GetTimestamp();
        RedisResult result;
        try
        {
            result = await CycleScript.EvaluateAsync(_redis.GetDatabase(), keys, args, send => Enqueue(request.Heartbeat, send)).ConfigureAwait(false);
        }
        catch (RedisServerException e) when (LateAt(e.Message) >= 0)
        {
            // The answer came back, so the link is fine and the estimate of server time was off (the server's
            // clock stepped): learn the server's time again from the rejection, conservatively as of now.
            if (long.TryParse(e.Message.AsSpan(LateAt(e.Message) + 5).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var serverNow))
            {
                Anchor(serverNow, Stopwatch.GetTimestamp());
            }
            throw new TimeoutException($"The lease cycle reached Redis more than {_lateAfterMs} ms after it was sent and was not applied.", e);
        }
        var response = CycleScript.Parse(result, request);
        Anchor(response.ServerTimeMs, sent);
        // Whatever this instance held from an earlier epoch, the script has just dropped (a lapse): from now on its
        // leases are this epoch's.
        Epoch = response.Epoch;
        return response;
    }

    /// <summary>Accepts requests again after a deregistration (the instance starts again).</summary>
    public void Open()
    {
        lock (_sendLock)
        {
            _closed = false;
        }
    }

    /// <summary>
    /// Issues a command under the send lock. A deregistration closes the store as it is issued; anything issued after
    /// is refused. Commands on one connection run in the order they are issued, so every request that is not refused
    /// runs before the deregistration, whose script then deletes what it acquired: no request of a stopped instance
    /// runs after its stop, not even an EVAL resent after NOSCRIPT.
    /// </summary>
    private Task<RedisResult> Enqueue(HeartbeatMode mode, Func<Task<RedisResult>> send)
    {
        lock (_sendLock)
        {
            if (mode == HeartbeatMode.Deregister)
            {
                _closed = true;
            }
            else if (_closed)
            {
                return Task.FromException<RedisResult>(new InvalidOperationException("The lease manager stopped: no request is sent after its deregistration."));
            }
            return send();
        }
    }

    /// <summary>
    /// The latest server time at which a call sent now may still act: the server time learnt from the last answer
    /// plus the time elapsed since on the real monotonic clock (Redis TIME is real time, whatever clock the
    /// lease manager is given), plus the operation timeout. Anchored at the send time of that
    /// answer's request, the estimate runs ahead of the server by that request's one-way latency, never behind.
    /// 0 (no limit) until the first answer.
    /// </summary>
    private long NotAfterServerMs()
    {
        lock (_anchorLock)
        {
            return _anchorTimestamp == 0 ? 0 : _anchorServerMs + (long)Stopwatch.GetElapsedTime(_anchorTimestamp).TotalMilliseconds + _lateAfterMs;
        }
    }

    /// <summary>Where <c>LATE now</c> starts in an error: at 0 on Redis, after <c>ERR </c> on Garnet; -1 otherwise.</summary>
    private static int LateAt(string message) =>
        message.StartsWith("LATE ", StringComparison.Ordinal) ? 0 : message.StartsWith("ERR LATE ", StringComparison.Ordinal) ? 4 : -1;

    private void Anchor(long serverMs, long timestamp)
    {
        lock (_anchorLock)
        {
            _anchorServerMs = serverMs;
            _anchorTimestamp = timestamp;
        }
    }

    /// <summary>Reads the lease value straight from Redis (the strict ownership check).</summary>
    public async Task<string?> GetLeaseValueAsync(string sessionId)
    {
        var value = await _redis.GetDatabase().StringGetAsync(Keys.Lease(sessionId)).ConfigureAwait(false);
        return value.IsNull ? null : value.ToString();
    }
}
