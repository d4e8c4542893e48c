using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Hosting;

/// <summary>
/// One deadline for the whole stop of an instance: <see cref="PollLeaseOptions.ShutdownTimeout"/> after the first
/// hosted service began stopping. The Azure Functions host kills a worker about 5 s after asking it to stop, whatever
/// the Generic Host's own ShutdownTimeout says, so every step (poll drain, cycle gate, unsubscribe, release, janitor)
/// shares this one bound instead of each having its own.
/// </summary>
internal sealed class ShutdownBudget : IDisposable
{
    private readonly IOptions<PollLeaseOptions> _options;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private CancellationTokenSource? _deadline;

    public ShutdownBudget(IOptions<PollLeaseOptions> options, TimeProvider time)
    {
        // Read when first needed, not when built: the host builds its hosted services before its start-up validation,
        // which then reports every invalid section at once instead of only the first one read.
        _options = options;
        _time = time;
    }

    /// <summary>The whole budget.</summary>
    public TimeSpan Length => _options.Value.ShutdownTimeout;

    /// <summary>True once a stop began and its budget ran out.</summary>
    public bool Spent
    {
        get
        {
            lock (_lock)
            {
                return _deadline?.IsCancellationRequested ?? false;
            }
        }
    }

    /// <summary>Starts the clock on the first call; every call returns the token cancelled when the budget is spent.</summary>
    public CancellationToken Begin()
    {
        lock (_lock)
        {
            _deadline ??= new CancellationTokenSource(Length, _time);
            return _deadline.Token;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _deadline?.Dispose();
        }
    }
}
