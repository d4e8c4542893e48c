using PollLease.Hosting;
using PollLease.Polling;
using Roles;

// Every instance polls its share of the sessions (the record handler); one of them, elected, also writes the
// fleet report. Run it two or three times against one Redis and stop the reporter: another takes the role over.
// appsettings.json is read next to the executable, wherever the app is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddPollLease(builder.Configuration);
builder.Services.AddPollHandler<RecordPollHandler>();

builder.Services.Configure<FleetReportOptions>(builder.Configuration.GetSection(FleetReportOptions.SectionName));
builder.Services.AddHostedService<RolesService>();

await builder.Build().RunAsync().ConfigureAwait(false);
