using System.Text.Json;
using PollLease.Sessions;

namespace PollCtl;

/// <summary>The sample sessions shipped in samples/sessions.json.</summary>
internal static class SampleCatalog
{
    public static IReadOnlyList<PollSession> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "samples", "sessions.json");
        using var stream = File.OpenRead(path);
        using var doc = JsonDocument.Parse(stream);
        var sessions = new List<PollSession>();
        foreach (var s in doc.RootElement.GetProperty("sessions").EnumerateArray())
        {
            var id = s.GetProperty("id").GetString() ?? "";
            SessionIds.Validate(id, "sessions.json id");
            sessions.Add(new PollSession(id, s.GetProperty("target").GetString() ?? "", TimeSpan.FromSeconds(s.GetProperty("intervalSeconds").GetInt32()), false, new Dictionary<string, string>()));
        }
        return sessions;
    }
}
