using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Election;

/// <summary>
/// Delivers an election's callbacks off its loop, one after another in the order the changes happened. Each runs on
/// the thread pool (a callback that blocks cannot hold up the queue); an exception is logged and counted; a callback
/// still running after the callback timeout is logged and the queue moves on. OnPromote is started, not awaited: it
/// may run for the whole term.
/// </summary>
internal sealed class CallbackQueue(ElectionContext c)
{
    private readonly Channel<Func<Task>> _queue = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private Task _dispatcher = Task.CompletedTask;

    /// <summary>Completes once <see cref="Complete"/> was called and every queued delivery ran.</summary>
    public Task Completion => _dispatcher;

    public void Start() => _dispatcher = Task.Run(DispatchAsync, CancellationToken.None);

    /// <summary>No delivery is queued after this; those queued still run.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Queues OnPromote, started when its turn comes and not awaited.</summary>
    public void Promoted(Func<Task> onPromote) =>
        Post(() =>
        {
            _ = InvokeAsync("OnPromote", onPromote); // Observed by InvokeAsync, which logs any failure.
            return Task.CompletedTask;
        });

    /// <summary>Queues a callback the queue waits for, at most the callback timeout.</summary>
    public void Post(string name, Func<Task> callback) => Post(() => WaitBoundedAsync(InvokeAsync(name, callback), name));

    /// <summary>Queues OnDemote (or nothing); the task completes when it ran, or at once when the queue is closed.</summary>
    public Task Demoted(Func<Task>? onDemote)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queued = Post(() =>
        {
            if (onDemote is null)
            {
                done.TrySetResult();
                return Task.CompletedTask;
            }
            // The queue moves on after the callback timeout; done completes only when OnDemote really returned.
            return WaitBoundedAsync(RunAndSignalAsync(onDemote, done), "OnDemote");
        });
        if (!queued)
        {
            done.TrySetResult();
        }
        return done.Task;
    }

    private async Task RunAndSignalAsync(Func<Task> callback, TaskCompletionSource done)
    {
        try
        {
            await InvokeAsync("OnDemote", callback).ConfigureAwait(false);
        }
        finally
        {
            done.TrySetResult();
        }
    }

    private bool Post(Func<Task> work) => _queue.Writer.TryWrite(work);

    private async Task DispatchAsync()
    {
        await foreach (var work in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            await work().ConfigureAwait(false);
        }
    }

    private async Task WaitBoundedAsync(Task running, string name)
    {
        try
        {
            await running.WaitAsync(c.Options.CallbackTimeout, c.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            ElectionLog.CallbackSlow(c.Logger, c.Role, c.InstanceId, name, c.Options.CallbackTimeout);
        }
    }

    private async Task InvokeAsync(string name, Func<Task> callback)
    {
        try
        {
            await Task.Run(callback).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // User callbacks may throw anything; it is logged and the election goes on.
        catch (Exception e)
#pragma warning restore CA1031
        {
            if (e is not OperationCanceledException)
            {
                c.Metrics.Failed("callback");
                ElectionLog.CallbackFailed(c.Logger, e, c.Role, c.InstanceId, name);
            }
        }
    }
}
