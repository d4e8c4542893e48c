using PollCtl.Manifest;

// Saves a growing state to args[0] forever, printing "ready" after the first save, so the test can kill it at
// random points of a save (the test expects zero corrupted loads after 1,000 kills).
if (args.Length != 1)
{
    await Console.Error.WriteLineAsync("usage: PollLease.StateTorture <state path>");
    return 2;
}
var file = new StateFile(args[0]);
var ids = new List<string>();
for (var i = 0; ; i++)
{
    ids.Add($"session-{i:D6}-{new string('x', i % 200)}");
    await file.SaveAsync(new ApplyState(1, ids, DateTimeOffset.UtcNow));
    if (i == 0)
    {
        Console.Out.WriteLine("ready");
        await Console.Out.FlushAsync();
    }
}
