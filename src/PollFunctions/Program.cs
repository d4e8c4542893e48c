using Azure.Identity;
using Microsoft.ApplicationInsights.Extensibility;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PollFunctions;
using PollLease.Hosting;
using PollLease.Polling;
using StackExchange.Redis;

// The isolated worker is a .NET Generic Host: everything registered here runs in EVERY instance of a scaled-out app,
// unlike timer functions, which Azure runs on one instance at a time. See docs/azure.md.
var builder = FunctionsApplication.CreateBuilder(args);

// No ConfigureFunctionsWebApplication(): the app has no HTTP triggers, so it needs no ASP.NET Core integration.

// Application Insights from the worker itself: its logs, and PollLease's metrics and cycle activities through
// ApplicationInsightsBridge. Adaptive sampling is off so that failover and lease-loss log lines are never sampled
// out; the volume is kept down by log levels instead (host.json for the host, Logging__LogLevel__* for the worker).
builder.Services
    .AddApplicationInsightsTelemetryWorkerService(options => options.EnableAdaptiveSampling = false)
    .ConfigureFunctionsApplicationInsights();
builder.Services.Configure<LoggerFilterOptions>(options =>
{
    // The Application Insights SDK adds a rule that keeps only Warning and above for its provider; remove it so the
    // configured levels (Information for PollLease) reach Application Insights.
    var warningOnly = options.Rules.FirstOrDefault(rule =>
        rule.ProviderName == "Microsoft.Extensions.Logging.ApplicationInsights.ApplicationInsightsLoggerProvider");
    if (warningOnly is not null)
    {
        options.Rules.Remove(warningOnly);
    }
});
builder.Services.AddHostedService<ApplicationInsightsBridge>();
// The deployed Application Insights accepts Entra ID authenticated telemetry only (DisableLocalAuth; the Bicep sets
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD and gives the identity Monitoring Metrics Publisher). The
// host reads that setting itself; the worker's SDK needs the credential. Azure.Identity comes with
// Microsoft.Azure.StackExchangeRedis. Locally the setting is absent and nothing changes.
if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")))
{
    builder.Services.Configure<TelemetryConfiguration>(c => c.SetAzureTokenCredential(new DefaultAzureCredential()));
}
// cloud_RoleInstance = the PollLease instance id, so no metric needs an instance dimension.
builder.Services.AddSingleton<ITelemetryInitializer, PollLeaseRoleInstance>();

// One trace per poll per session is the bulk of the volume at Information: poll starts are Debug here unless the app
// setting PollLease__Polling__PollTraceLevel says otherwise (configured before AddPollLease binds the section, so a
// setting wins). Poll failures, skips and every lease change keep their own levels.
builder.Services.Configure<PollingOptions>(o => o.PollTraceLevel = LogLevel.Debug);

// PollLease from configuration (app settings PollLease__*, local.settings.json locally). This also registers the
// per-instance hosted service. Its start returns at once (nothing here or there waits for Redis or for a token): it
// connects, registers the instance and polls its own sessions in the background, retrying with backoff while Redis or
// the managed identity is unavailable. Its stop releases every lease and deregisters within PollLease__ShutdownTimeout
// (3 s, inside the ~5 s the Functions host allows); what it cannot release then expires by its TTL.
builder.Services.AddPollLease(builder.Configuration);
if (string.Equals(builder.Configuration["PollFunctions:RedisAuthentication"], "ManagedIdentity", StringComparison.OrdinalIgnoreCase))
{
    // Entra ID instead of an access key: the app's system-assigned identity gets a token (refreshed by the extension);
    // PollLease__Redis then holds only host:port,ssl=true.
    builder.Services.Configure<PollLeaseRedisOptions>(o => o.ConfigureConnection.Add(
        async options => await options.ConfigureForAzureWithSystemAssignedManagedIdentityAsync().ConfigureAwait(false)));
}

// The poll handler every owned session is polled with. Edit this line to use your own IPollHandler, or
// RecordPollHandler (appends who polled, with which token, when) for a smoke test.
builder.Services.AddPollHandler<HttpPollHandler>();

await builder.Build().RunAsync().ConfigureAwait(false);
