using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>How a cycle touches this instance's registry entry.</summary>
internal enum HeartbeatMode
{
    None = 0,
    Beat = 1,
    Register = 2,
    Deregister = -1,
}

/// <summary>One lease cycle's request: everything goes to Redis in a single script call.</summary>
internal sealed record CycleRequest(
    HeartbeatMode Heartbeat,
    IReadOnlyList<(string SessionId, long Token)> Renew,
    IReadOnlyList<string> Acquire,
    IReadOnlyList<(string SessionId, long Token)> Release);

/// <summary>Result of renewing one lease: renewed, missing in Redis, or held by <see cref="Holder"/>.</summary>
internal readonly record struct RenewOutcome(bool Renewed, string? Holder);

/// <summary>Result of one acquire attempt: a token, or the current holder and its remaining TTL.</summary>
internal readonly record struct AcquireOutcome(long Token, string? Holder, TimeSpan HolderRemaining);

/// <summary>
/// One lease cycle's answer. <c>HeartbeatExpiry</c>: each live node's heartbeat expiry in server time (ms); a node
/// heartbeats and renews its leases in the same script, so when it moves on, so did the expiry of every lease the
/// node holds.
/// </summary>
internal sealed record CycleResponse(
    long ServerTimeMs,
    IReadOnlyList<string> LiveNodes,
    RenewOutcome[] Renew,
    AcquireOutcome[] Acquire,
    bool[] Released,
    string CatalogVersion,
    IReadOnlyDictionary<string, long> HeartbeatExpiry);

/// <summary>The Redis side of the lease cycle: builds the script call and reads its answer.</summary>
internal sealed class LeaseStore
{
    private static readonly RedisScript CycleScript = new(LeaseScripts.Cycle);
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly string _instanceId;
    private readonly RedisValue _leaseTtlMs;
    private readonly RedisValue _heartbeatTtlMs;
    private readonly long _lateAfterMs;
    private readonly object _anchorLock = new();
    private long _anchorServerMs;
    private long _anchorTimestamp;

    public LeaseStore(IConnectionMultiplexer redis, RedisKeys keys, string instanceId, PollLeaseOptions options)
    {
        _redis = redis;
        _keys = keys;
        _instanceId = instanceId;
        _leaseTtlMs = (long)options.LeaseTtl.TotalMilliseconds;
        _heartbeatTtlMs = (long)options.HeartbeatTtl.TotalMilliseconds;
        // The caller's own timeout: a call executed later than this is one its caller has already counted as failed.
        // (A call executed in time whose answer is slower still is not caught here; its leases expire by their TTL.)
        _lateAfterMs = (long)options.OperationTimeout.TotalMilliseconds;
    }

    public RedisKeys Keys => _keys;

    public async Task<CycleResponse> RunAsync(CycleRequest request, string nodeMetadata)
    {
        var r = request.Renew.Count;
        var a = request.Acquire.Count;
        var l = request.Release.Count;
        var keys = new RedisKey[3 + r + 2 * a + l];
        var args = new RedisValue[11 + r + l];
        keys[0] = _keys.Nodes;
        keys[1] = _keys.Node(_instanceId);
        keys[2] = _keys.SessionsVersion;
        var k = 3;
        foreach (var (session, token) in request.Renew)
        {
            args[11 + k - 3] = LeaseValue.Format(_instanceId, token);
            keys[k++] = _keys.Lease(session);
        }
        foreach (var session in request.Acquire)
        {
            keys[k++] = _keys.Lease(session);
            keys[k++] = _keys.Fence(session);
        }
        var v = 11 + r;
        foreach (var (session, token) in request.Release)
        {
            args[v++] = LeaseValue.Format(_instanceId, token);
            keys[k++] = _keys.Lease(session);
        }
        args[0] = _instanceId;
        args[1] = _leaseTtlMs;
        args[2] = _heartbeatTtlMs;
        args[3] = (int)request.Heartbeat;
        args[4] = nodeMetadata;
        args[5] = r;
        args[6] = a;
        args[7] = l;
        args[8] = _keys.Root + ":events";
        args[9] = _keys.LeasePrefix.Length;
        // Leaving is harmless however late; anything that renews, acquires or heartbeats must not act after its
        // caller stopped waiting for the answer.
        args[10] = request.Heartbeat == HeartbeatMode.Deregister ? 0 : NotAfterServerMs();

        var sent = Stopwatch.GetTimestamp();
        RedisResult result;
        try
        {
            result = await CycleScript.EvaluateAsync(_redis.GetDatabase(), keys, args).ConfigureAwait(false);
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
        var response = Parse(result, r, a, l);
        Anchor(response.ServerTimeMs, sent);
        return response;
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
        var value = await _redis.GetDatabase().StringGetAsync(_keys.Lease(sessionId)).ConfigureAwait(false);
        return value.IsNull ? null : value.ToString();
    }

    private static CycleResponse Parse(RedisResult result, int r, int a, int l)
    {
        var top = (RedisResult[])result!;
        if (top.Length != 6)
        {
            throw new InvalidOperationException($"Lease cycle script returned {top.Length} elements, expected 6.");
        }
        var now = (long)top[0];
        var liveRaw = (RedisResult[])top[1]!;
        var live = new string[liveRaw.Length / 2];
        var beats = new Dictionary<string, long>(live.Length, StringComparer.Ordinal);
        for (var i = 0; i < live.Length; i++)
        {
            live[i] = liveRaw[2 * i].ToString();
            beats[live[i]] = (long)double.Parse(liveRaw[(2 * i) + 1].ToString(), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        // The script lists only the leases it could not renew (index, then 0 or the other holder's value).
        var renewFailed = (RedisResult[])top[2]!;
        var renew = new RenewOutcome[r];
        Array.Fill(renew, new RenewOutcome(true, null));
        for (var f = 0; f + 1 < renewFailed.Length; f += 2)
        {
            var x = renewFailed[f + 1];
            renew[(int)(long)renewFailed[f] - 1] = x.Resp2Type == ResultType.Integer
                ? new RenewOutcome(false, null)
                : new RenewOutcome(false, x.ToString());
        }

        var acquireRaw = (RedisResult[])top[3]!;
        var acquire = new AcquireOutcome[a];
        for (var i = 0; i < a; i++)
        {
            var token = acquireRaw[3 * i].ToString();
            var holder = acquireRaw[3 * i + 1].ToString();
            var pttl = (long)acquireRaw[3 * i + 2];
            acquire[i] = string.IsNullOrEmpty(token)
                ? new AcquireOutcome(0, holder, pttl > 0 ? TimeSpan.FromMilliseconds(pttl) : TimeSpan.Zero)
                : new AcquireOutcome(long.Parse(token, NumberStyles.None, CultureInfo.InvariantCulture), null, TimeSpan.Zero);
        }

        var releaseRaw = (RedisResult[])top[4]!;
        var released = new bool[l];
        for (var i = 0; i < l; i++)
        {
            released[i] = (long)releaseRaw[i] == 1;
        }
        return new CycleResponse(now, live, renew, acquire, released, top[5].ToString(), beats);
    }
}
