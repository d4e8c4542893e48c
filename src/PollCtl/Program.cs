using System.CommandLine;
using PollCtl;

// pollctl: the local fleet runner and admin CLI. Exit codes: 0 ok, 1 runtime failure, 2 bad usage.
var redisOption = new Option<string?>("--redis") { Description = "StackExchange.Redis connection string (default: POLL_REDIS, else the embedded server)" };
var portOption = new Option<int>("--port") { Description = "Port of the embedded Garnet server", DefaultValueFactory = _ => EmbeddedRedis.DefaultPort };
var prefixOption = new Option<string>("--prefix") { Description = "Key prefix of the fleet", DefaultValueFactory = _ => "poll" };

var instances = new Option<int>("--instances", "-n") { Description = "Instances to run in this process", DefaultValueFactory = _ => 1 };
var plain = new Option<bool>("--plain") { Description = "Plain log lines instead of the live view (automatic when output is redirected)" };
var leaseTtl = new Option<TimeSpan>("--lease-ttl") { Description = "Lease TTL (renew and heartbeat every third of it)", DefaultValueFactory = _ => TimeSpan.FromSeconds(9) };
var noSample = new Option<bool>("--no-sample") { Description = "Do not load samples/sessions.json into an empty catalog" };
var run = new Command("run", "Run 1..N PollLease instances polling the catalog with the record handler") { redisOption, portOption, prefixOption, instances, plain, leaseTtl, noSample };
run.SetAction((p, ct) => Cli.GuardAsync(() => RunCommand.RunAsync(new RunSettings(
    p.GetValue(redisOption), p.GetValue(portOption), p.GetValue(prefixOption)!, p.GetValue(instances), p.GetValue(plain) || Console.IsOutputRedirected,
    p.GetValue(leaseTtl), !p.GetValue(noSample)), ct)));

var serverPort = new Option<int>("--port") { Description = "Port to listen on (127.0.0.1)", DefaultValueFactory = _ => EmbeddedRedis.DefaultPort };
var server = new Command("server", "Run the embedded Garnet server (in memory, Lua on) without a fleet, until Ctrl+C") { serverPort };
server.SetAction((p, ct) => Cli.GuardAsync(() => ServerCommand.RunAsync(new ServerSettings(p.GetValue(serverPort)), ct)));

var root = new RootCommand("pollctl: run a local PollLease fleet and administer one")
{
    run,
    server,
    AdminCommands.Status(redisOption, portOption, prefixOption),
    AdminCommands.Sessions(redisOption, portOption, prefixOption),
    AdminCommands.Messages(redisOption, portOption, prefixOption),
    AdminCommands.Apply(redisOption, portOption, prefixOption),
};
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors)
    {
        await Console.Error.WriteLineAsync("pollctl: " + error.Message);
    }
    return 2;
}
// RunCommand owns SIGINT/SIGTERM and stops the fleet in order; System.CommandLine would otherwise exit the process 2 s after the signal.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
