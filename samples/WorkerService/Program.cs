using PollLease.Hosting;
using WorkerService;

// A worker service whose instances share the polling of the sessions in Redis: run it twice against the same
// Redis and each session is polled by exactly one of them; stop one and the other takes its sessions over.
// appsettings.json is read next to the executable, wherever the app is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Options from the "PollLease" section (appsettings.json, environment PollLease__Redis=..., or the command line
// --PollLease:Redis=...), validated at start-up; the Redis connection; the lease and poll loops.
builder.Services.AddPollLease(builder.Configuration);

// The handler is one singleton that serves every session concurrently, so it takes IHttpClientFactory
// rather than a typed HttpClient (a typed client is meant to be transient).
builder.Services.AddHttpClient(PriceHandler.HttpClientName, client => client.Timeout = TimeSpan.FromSeconds(10));
builder.Services.AddPollHandler<PriceHandler>();

await builder.Build().RunAsync().ConfigureAwait(false);
