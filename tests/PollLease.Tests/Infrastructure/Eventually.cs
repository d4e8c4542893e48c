using System.Diagnostics;

namespace PollLease.Tests.Infrastructure;

/// <summary>Waits on a condition with a deadline (never a bare sleep as synchronisation).</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}");
            }
            await Task.Delay(10);
        }
    }

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}");
            }
            await Task.Delay(10);
        }
    }
}
