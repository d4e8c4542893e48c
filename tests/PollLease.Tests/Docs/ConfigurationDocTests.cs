using System.Collections;
using System.Globalization;
using System.Reflection;
using PollLease.Coordination;

namespace PollLease.Tests.Docs;

/// <summary>
/// docs/configuration.md against the options classes: every public class of the library whose name ends in
/// <c>Options</c> has a section, every public property of it a row, and each row's default is the value a new
/// instance holds. A row for a property that no longer exists fails too.
/// </summary>
public sealed class ConfigurationDocTests
{
    private static readonly Type[] OptionsTypes = typeof(PollLeaseOptions).Assembly.GetExportedTypes()
        .Where(t => t.IsClass && !t.IsAbstract && t.Name.EndsWith("Options", StringComparison.Ordinal))
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .ToArray();

    public static TheoryData<string> OptionsTypeNames() => new(OptionsTypes.Select(t => t.Name));

    [Fact]
    public void The_options_classes_the_doc_must_cover_are_found()
    {
        // The classes AddPollLease binds and the election's, by name: if one is renamed or stops being public,
        // this says so instead of the theory silently losing a case.
        foreach (var name in new[] { "PollLeaseOptions", "PollingOptions", "HttpPollOptions", "MessageLogOptions", "ElectionOptions", "JanitorOptions", "PollLeaseRedisOptions" })
        {
            Assert.Contains(OptionsTypes, t => t.Name == name);
        }
    }

    [Theory]
    [MemberData(nameof(OptionsTypeNames))]
    public void Every_option_is_documented_with_its_default(string typeName)
    {
        var type = OptionsTypes.Single(t => t.Name == typeName);
        var sections = ParseDoc(File.ReadAllText(DocPath()));
        Assert.True(sections.TryGetValue(typeName, out var rows), $"docs/configuration.md has no section for {typeName} (a heading with `{typeName}` in backticks)");

        var instance = Activator.CreateInstance(type)!;
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(IsOption).ToList();
        var problems = new List<string>();
        foreach (var property in properties)
        {
            var expected = Canonical(property.PropertyType, property.GetValue(instance));
            if (!rows.TryGetValue(property.Name, out var documented))
            {
                problems.Add($"{typeName}.{property.Name} is not in the doc (its default is `{expected}`)");
            }
            else if (documented != expected && !documented.StartsWith(expected + " (", StringComparison.Ordinal))
            {
                problems.Add($"{typeName}.{property.Name}: the doc says the default is '{documented}', the code says '{expected}'");
            }
        }
        foreach (var extra in rows.Keys.Where(k => properties.All(p => p.Name != k)))
        {
            problems.Add($"{typeName}: the doc lists '{extra}', which is not a property of the class");
        }
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Canonical_defaults_read_the_way_the_doc_writes_them()
    {
        Assert.Equal("250 ms", Canonical(typeof(TimeSpan), TimeSpan.FromMilliseconds(250)));
        Assert.Equal("30 s", Canonical(typeof(TimeSpan), TimeSpan.FromSeconds(30)));
        Assert.Equal("2 min", Canonical(typeof(TimeSpan), TimeSpan.FromMinutes(2)));
        Assert.Equal("7 days", Canonical(typeof(TimeSpan), TimeSpan.FromDays(7)));
        Assert.Equal("0.1", Canonical(typeof(double), 0.1));
        Assert.Equal("none", Canonical(typeof(string), null));
        Assert.Equal("empty", Canonical(typeof(string), ""));
        Assert.Equal("empty", Canonical(typeof(IList<string>), new List<string>()));
        Assert.Equal("true", Canonical(typeof(bool), true));
    }

    /// <summary>
    /// A value someone sets: a public setter (init included), or a get-only collection that configuration binding
    /// fills (<c>AllowedHosts</c>). Get-only values computed from others (<c>CycleInterval</c>) are not options.
    /// </summary>
    private static bool IsOption(PropertyInfo p) =>
        p.GetMethod is { IsPublic: true } && p.GetIndexParameters().Length == 0
        && (p.SetMethod is { IsPublic: true } || (p.PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(p.PropertyType)));

    /// <summary>How a default is written in the doc's Default column (before an optional " (explanation)").</summary>
    internal static string Canonical(Type type, object? value)
    {
        switch (value)
        {
            case null:
                return "none";
            case string s:
                return s.Length == 0 ? "empty" : s;
            case bool b:
                return b ? "true" : "false";
            case TimeSpan t:
                return Duration(t);
            case Enum e:
                return e.ToString();
            case IFormattable f when type.IsPrimitive:
                return f.ToString(null, CultureInfo.InvariantCulture);
            case IEnumerable items:
                return items.Cast<object>().Any() ? string.Join(", ", items.Cast<object>()) : "empty";
            default:
                return type.Name.EndsWith("Options", StringComparison.Ordinal) ? $"see {type.Name}" : value.ToString() ?? "none";
        }
    }

    private static string Duration(TimeSpan t)
    {
        if (t.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            return $"{t.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms";
        }
        var seconds = (long)t.TotalSeconds;
        return seconds switch
        {
            _ when seconds != 0 && seconds % 86400 == 0 => $"{seconds / 86400} day{(seconds == 86400 ? "" : "s")}",
            _ when seconds != 0 && seconds % 3600 == 0 => $"{seconds / 3600} h",
            _ when seconds >= 60 && seconds % 60 == 0 => $"{seconds / 60} min",
            _ => $"{seconds} s",
        };
    }

    /// <summary>
    /// Sections start at a heading naming a class in backticks (<c>## `PollLeaseOptions` ...</c>); their rows are
    /// table lines <c>| `Name` | default | rule |</c>. Backticks are dropped from the default cell.
    /// </summary>
    private static Dictionary<string, Dictionary<string, string>> ParseDoc(string text)
    {
        var sections = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        Dictionary<string, string>? current = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith('#'))
            {
                current = null;
                var name = OptionsTypes.Select(t => t.Name).FirstOrDefault(n => line.Contains($"`{n}`", StringComparison.Ordinal));
                if (name is not null)
                {
                    current = new Dictionary<string, string>(StringComparer.Ordinal);
                    sections[name] = current;
                }
                continue;
            }
            if (current is null || !line.StartsWith("| `", StringComparison.Ordinal))
            {
                continue;
            }
            var cells = line.Split('|').Select(c => c.Trim()).ToArray();
            // cells[0] is empty (the line starts with '|'); [1] the option, [2] the default.
            current[cells[1].Trim('`')] = cells[2].Replace("`", "", StringComparison.Ordinal);
        }
        return sections;
    }

    private static string DocPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PollFunctions.sln")))
            {
                return Path.Combine(dir.FullName, "docs", "configuration.md");
            }
        }
        throw new InvalidOperationException("repository root (PollFunctions.sln) not found");
    }
}
