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
    private readonly TimeSpan _length;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private CancellationTokenSource? _deadline;

    public ShutdownBudget(IOptions<PollLeaseOptions> options, TimeProvider time)
    {
        _length = options.Value.ShutdownTimeout;
        _time = time;
    }

    /// <summary>The whole budget.</summary>
    public TimeSpan Length => _length;

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
            _deadline ??= new CancellationTokenSource(_length, _time);
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
