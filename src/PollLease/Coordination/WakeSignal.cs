namespace PollLease.Coordination;

/// <summary>Lets a background loop sleep until a deadline or until something worth reacting to happens.</summary>
internal sealed class WakeSignal
{
    private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set() => Volatile.Read(ref _tcs).TrySetResult();

    /// <summary>Returns after <paramref name="delay"/>, or earlier when <see cref="Set"/> is called.</summary>
    public async Task WaitAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken)
    {
        var tcs = Volatile.Read(ref _tcs);
        if (delay > TimeSpan.Zero && !tcs.Task.IsCompleted)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var sleep = Task.Delay(delay, time, cts.Token);
            var done = await Task.WhenAny(sleep, tcs.Task).ConfigureAwait(false);
            await cts.CancelAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (done == sleep && sleep.IsFaulted)
            {
                await sleep.ConfigureAwait(false);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (tcs.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), tcs);
        }
    }
}
