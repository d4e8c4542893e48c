using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Hosting;

namespace PollLease.Tests.Hosting;

/// <summary>
/// host.json, local.settings.sample.json and the Bicep's app settings against the configuration the code binds: every
/// options class AddPollLease binds (found by reading its source, so a new one cannot be forgotten), every property of
/// them, and the settings the Functions app reads itself (timer schedule %...%, Configuration["..."]).
/// </summary>
public sealed partial class AzureConfigurationTests
{
    private static readonly string Root = FindRoot();

    [Fact]
    public void Host_json_parses_sets_a_timeout_and_never_samples_out_traces_where_the_lease_events_are()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "host.json")));
        var host = doc.RootElement;
        Assert.Equal("2.0", host.GetProperty("version").GetString());

        var timeout = TimeSpan.Parse(host.GetProperty("functionTimeout").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(timeout, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(10));

        var logging = host.GetProperty("logging");
        Assert.Equal("Information", logging.GetProperty("logLevel").GetProperty("PollLease").GetString());
        var sampling = logging.GetProperty("applicationInsights").GetProperty("samplingSettings");
        var excluded = sampling.GetProperty("excludedTypes").GetString()!.Split(';', StringSplitOptions.TrimEntries);
        // "Lease failover:" and "Lease lost:" are log lines (Trace telemetry): excluded from sampling, never dropped.
        Assert.Contains("Trace", excluded);
        Assert.Contains("Exception", excluded);
    }

    [Fact]
    public void The_local_settings_sample_parses_and_carries_the_required_keys_and_every_bound_setting_at_its_default()
    {
        var values = LocalSettingsValues(out var encrypted);
        Assert.False(encrypted);
        Assert.Equal("UseDevelopmentStorage=true", values["AzureWebJobsStorage"]);
        Assert.Equal("dotnet-isolated", values["FUNCTIONS_WORKER_RUNTIME"]);
        Assert.Equal("*/10 * * * * *", values["PollLeaseTimerSchedule"]);
        Assert.Equal(6, values["PollLeaseTimerSchedule"].Split(' ').Length);
        Assert.StartsWith("localhost:", values["PollLease__Redis"], StringComparison.Ordinal);

        foreach (var key in RequiredKeys())
        {
            Assert.True(values.ContainsKey(key.Setting) || (key.IsList && values.ContainsKey(key.Setting + "__0")), $"local.settings.sample.json lacks {key.Setting}");
        }
        Assert.False(values.ContainsKey("PollLease__InstanceId"), "InstanceId must stay generated per instance");

        // Bound through the real registration, the sample gives valid options equal to the code's defaults.
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(kv => new KeyValuePair<string, string?>(kv.Key.Replace("__", ":", StringComparison.Ordinal), kv.Value)))
            .Build();
        using var services = new ServiceCollection().AddLogging().AddPollLease(config).BuildServiceProvider();
        foreach (var type in BoundOptionTypes())
        {
            var accessor = typeof(IOptions<>).MakeGenericType(type);
            var options = accessor.GetProperty("Value")!.GetValue(services.GetRequiredService(accessor))!;
            var defaults = Activator.CreateInstance(type)!;
            // Redis points at a local server, InstanceId stays generated, AllowedHosts (empty by default) names an example,
            // PollTraceLevel is the Functions app's own default (Debug; Program.cs sets it before the section binds).
            foreach (var p in SettableProperties(type).Where(p => p.Name is not ("Redis" or "InstanceId" or "AllowedHosts" or "PollTraceLevel")))
            {
                Assert.True(Equals(p.GetValue(defaults), p.GetValue(options)), $"{type.Name}.{p.Name}: sample {p.GetValue(options)} != default {p.GetValue(defaults)}");
            }
        }
        Assert.Equal(["api.example.com"], services.GetRequiredService<IOptions<global::PollLease.Polling.HttpPollOptions>>().Value.AllowedHosts);
    }

    [Fact]
    public void The_bicep_sets_every_setting_the_code_binds_with_the_code_defaults_and_nothing_Flex_Consumption_rejects()
    {
        var bicep = File.ReadAllText(Path.Combine(Root, "infra", "bicep", "modules", "appsettings.bicep"));
        var settings = ObjectBlock(bicep, "var appSettings = union({");
        var keys = SettingLine().Matches(settings).ToDictionary(m => m.Groups["key"].Value, m => m.Groups["value"].Value.Trim());

        foreach (var key in RequiredKeys())
        {
            var present = key.IsList ? bicep.Contains($"'{key.Setting}__${{i}}'", StringComparison.Ordinal) : keys.ContainsKey(key.Setting);
            Assert.True(present, $"functionapp.bicep app settings lack {key.Setting}");
        }
        Assert.DoesNotContain("PollLease__InstanceId", keys.Keys);
        Assert.Contains("AzureWebJobsStorage__accountName", keys.Keys);
        Assert.Contains("APPLICATIONINSIGHTS_CONNECTION_STRING", keys.Keys);
        // Flex Consumption takes the runtime from functionAppConfig and refuses these as app settings.
        Assert.DoesNotContain("FUNCTIONS_WORKER_RUNTIME", keys.Keys);
        Assert.DoesNotContain("FUNCTIONS_EXTENSION_VERSION", keys.Keys);
        Assert.DoesNotContain("AzureWebJobsStorage", keys.Keys);
        // Application Insights takes Entra ID ingestion only.
        Assert.Equal("'Authorization=AAD'", keys["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]);
        // Premium and Consumption get the runtime settings and their content share, whose key is a Key Vault reference.
        Assert.Contains("var planSettings = plan == 'FlexConsumption'", bicep, StringComparison.Ordinal);
        Assert.Contains("FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'", bicep, StringComparison.Ordinal);
        Assert.Contains("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: '@Microsoft.KeyVault(", bicep, StringComparison.Ordinal);
        Assert.DoesNotContain("listKeys", bicep, StringComparison.Ordinal);

        // The Bicep's defaults are the code's (the sample is checked against the code above).
        var defaults = SettingLine().Matches(ObjectBlock(bicep, "var defaults = {"))
            .ToDictionary(m => m.Groups["key"].Value, m => m.Groups["value"].Value.Trim().Trim('\''));
        var sample = LocalSettingsValues(out _);
        foreach (var (key, value) in keys.Where(kv => kv.Value.StartsWith("options.", StringComparison.Ordinal)))
        {
            Assert.Equal(sample[key], defaults[value["options.".Length..]]);
        }
    }

    [Fact]
    public void The_workbook_parses_and_charts_the_instruments_the_readme_names()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "infra", "workbook", "polllease.workbook.json")));
        var queries = doc.RootElement.GetProperty("items").EnumerateArray()
            .Where(i => i.GetProperty("type").GetInt32() == 3)
            .Select(i => i.GetProperty("content").GetProperty("query").GetString()!)
            .ToList();
        var readme = File.ReadAllText(Path.Combine(Root, "docs", "operations.md"));
        // Deployed with the Application Insights component as its fallback resource, so it opens from the gallery too.
        var workbookBicep = File.ReadAllText(Path.Combine(Root, "infra", "bicep", "modules", "workbook.bicep"));
        Assert.Contains("fallbackResourceIds: [", workbookBicep, StringComparison.Ordinal);
        // Instance ids are cloud_RoleInstance, never a metric dimension.
        Assert.DoesNotContain(queries, q => q.Contains("customDimensions.instance", StringComparison.Ordinal));
        foreach (var instrument in new[] { "polllease.leases.owned", "polllease.lease.failovers", "polllease.lease.losses", "polllease.poll.duration" })
        {
            Assert.Contains(queries, q => q.Contains($"'{instrument}'", StringComparison.Ordinal));
            Assert.Contains(instrument, readme, StringComparison.Ordinal);
        }
        Assert.Contains(queries, q => q.Contains("Lease failover:", StringComparison.Ordinal) && q.Contains("Lease lost:", StringComparison.Ordinal));
    }

    /// <summary>Every setting the code binds, in app-setting form (<c>PollLease__Polling__Tick</c>), except InstanceId.</summary>
    private static List<(string Setting, bool IsList)> RequiredKeys()
    {
        var keys = new List<(string, bool)>();
        foreach (var type in BoundOptionTypes())
        {
            var section = (string)type.GetField("SectionName")!.GetValue(null)!;
            foreach (var p in SettableProperties(type).Where(p => p.Name != nameof(PollLeaseOptions.InstanceId)))
            {
                keys.Add(($"{section}:{p.Name}".Replace(":", "__", StringComparison.Ordinal), p.PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(p.PropertyType)));
            }
        }
        // What the Functions app reads itself: %Setting% in trigger attributes and Configuration["Section:Key"].
        foreach (var file in Directory.GetFiles(Path.Combine(Root, "src", "PollFunctions"), "*.cs"))
        {
            var text = File.ReadAllText(file);
            keys.AddRange(AppSettingReference().Matches(text).Select(m => (m.Groups["name"].Value, false)));
            keys.AddRange(ConfigurationRead().Matches(text).Select(m => (m.Groups["name"].Value.Replace(":", "__", StringComparison.Ordinal), false)));
        }
        Assert.Contains(("PollLeaseTimerSchedule", false), keys);
        return keys.Distinct().ToList();
    }

    /// <summary>The options types AddPollLease binds, read from its source.</summary>
    private static List<Type> BoundOptionTypes()
    {
        var source = File.ReadAllText(Path.Combine(Root, "src", "PollLease", "Hosting", "PollLeaseServiceCollectionExtensions.cs"));
        var types = typeof(PollLeaseOptions).Assembly.GetTypes();
        var bound = BindCall().Matches(source).Select(m => types.Single(t => t.Name == m.Groups["type"].Value)).ToList();
        Assert.True(bound.Count >= 4, "AddPollLease binds PollLease, Polling, Http and Messages options");
        return bound;
    }

    /// <summary>
    /// Scalar and list settings. Nested option objects (the janitor's ElectionOptions) are left out: their timings are
    /// tuning knobs with validated defaults, settable but not spelled out in every deployment.
    /// </summary>
    private static IEnumerable<PropertyInfo> SettableProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => (p.SetMethod?.IsPublic == true && !IsNestedOptions(p.PropertyType)) || IsList(p.PropertyType));

    private static bool IsList(Type type) => type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type);

    private static bool IsNestedOptions(Type type) => type.IsClass && type != typeof(string) && !IsList(type);

    private static Dictionary<string, string> LocalSettingsValues(out bool encrypted)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "local.settings.sample.json")));
        encrypted = doc.RootElement.GetProperty("IsEncrypted").GetBoolean();
        return doc.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
    }

    /// <summary>The text of the object literal that starts at <paramref name="opening"/>, by brace matching.</summary>
    private static string ObjectBlock(string text, string opening)
    {
        var start = text.IndexOf(opening, StringComparison.Ordinal);
        Assert.True(start >= 0, $"'{opening}' not found");
        var depth = 0;
        for (var i = start + opening.Length - 1; i < text.Length; i++)
        {
            depth += text[i] switch { '{' => 1, '}' => -1, _ => 0 };
            if (depth == 0)
            {
                return text[(start + opening.Length)..i];
            }
        }
        throw new InvalidOperationException($"unbalanced braces after '{opening}'");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PollFunctions.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (PollFunctions.sln) not found");
    }

    [GeneratedRegex(@"^\s*(?<key>[A-Za-z][A-Za-z0-9_]*):\s*(?<value>.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex SettingLine();

    [GeneratedRegex(@"""%(?<name>[A-Za-z0-9_]+)%""")]
    private static partial Regex AppSettingReference();

    [GeneratedRegex(@"Configuration\[""(?<name>[^""]+)""\]")]
    private static partial Regex ConfigurationRead();

    [GeneratedRegex(@"\.Bind\(configuration\.GetSection\((?<type>\w+)\.SectionName\)\)")]
    private static partial Regex BindCall();
}
