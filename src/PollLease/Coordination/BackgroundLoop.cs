namespace PollLease.Coordination;

/// <summary>
/// One background loop: runs a step, sleeps for the delay the step returns (or until <see cref="Wake"/>), and again,
/// until stopped. The library's loops run on it, so starting, waking, surviving a failed step and a bounded stop are
/// written once. A step that throws is reported to the failure handler, which returns the delay before the next try.
/// Its cancellation source is disposed by the stop that saw the loop end.
/// </summary>
internal sealed class BackgroundLoop
{
    private readonly WakeSignal _wake = new();
    private readonly TimeProvider _time;
    private CancellationTokenSource? _cts;
    private Task? _task;

    public BackgroundLoop(TimeProvider time) => _time = time;

    /// <summary>True from <see cref="Start"/> until <see cref="StopAsync"/> (after which it may start again).</summary>
    public bool IsRunning => Volatile.Read(ref _task) is not null;

    /// <summary>Starts the loop on the thread pool; the first step runs after <paramref name="firstDelay"/>.</summary>
    /// <param name="step">One pass; returns how long to sleep before the next.</param>
    /// <param name="failed">Told of an exception a step threw (cancellation by stop excepted); returns the delay before the next pass.</param>
    /// <param name="firstDelay">How long to wait before the first pass.</param>
    public void Start(Func<CancellationToken, Task<TimeSpan>> step, Func<Exception, TimeSpan> failed, TimeSpan firstDelay = default)
    {
        var cts = new CancellationTokenSource();
        if (Interlocked.CompareExchange(ref _cts, cts, null) is not null)
        {
            cts.Dispose();
            throw new InvalidOperationException("The loop was already started.");
        }
        Volatile.Write(ref _task, Task.Run(() => RunAsync(step, failed, firstDelay, cts.Token), CancellationToken.None));
    }

    /// <summary>Runs the next pass now instead of at the end of the current sleep (passes never overlap).</summary>
    public void Wake() => _wake.Set();

    /// <summary>
    /// Cancels the loop and waits for the pass in flight to end, at most <paramref name="bound"/>. False when it did not
    /// end in time: it is left to finish on its own against its cancelled token.
    /// </summary>
    public async Task<bool> StopAsync(TimeSpan bound, CancellationToken cancellationToken = default)
    {
        var task = Interlocked.Exchange(ref _task, null);
        var cts = Interlocked.Exchange(ref _cts, null);
        if (cts is null || task is null)
        {
            return true;
        }
        await cts.CancelAsync().ConfigureAwait(false);
        try
        {
            await task.WaitAsync(bound, _time, cancellationToken).ConfigureAwait(false);
            cts.Dispose();
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private async Task RunAsync(Func<CancellationToken, Task<TimeSpan>> step, Func<Exception, TimeSpan> failed, TimeSpan delay, CancellationToken stopping)
    {
        while (true)
        {
            try
            {
                await _wake.WaitAsync(delay, _time, stopping).ConfigureAwait(false);
                delay = await step(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // A loop must outlive any surprise (a malformed reply, a bug): report it, back off, go on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                delay = failed(e);
            }
        }
    }
}
