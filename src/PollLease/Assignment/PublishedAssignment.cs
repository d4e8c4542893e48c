using System.Text.Json;

namespace PollLease.Assignment;

/// <summary>
/// The assignment the fleet janitor last published: every instance plans from the same previous owners, so a join
/// or leave moves only the sessions it has to (see <see cref="BalancedAssignment"/>), and all instances still
/// compute the same owners. Stored as JSON <c>{"nodes":[...],"owners":{"session":nodeIndex}}</c>.
/// </summary>
internal sealed class PublishedAssignment
{
    private PublishedAssignment(long version, IReadOnlyDictionary<string, string> owners)
    {
        Version = version;
        Owners = owners;
    }

    /// <summary>The value of the version key it was published under.</summary>
    public long Version { get; }

    /// <summary>Session to owner.</summary>
    public IReadOnlyDictionary<string, string> Owners { get; }

    public static string Serialize(IReadOnlyDictionary<string, string> owners)
    {
        var nodes = owners.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var index = nodes.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i, StringComparer.Ordinal);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("nodes");
            foreach (var node in nodes)
            {
                json.WriteStringValue(node);
            }
            json.WriteEndArray();
            json.WriteStartObject("owners");
            foreach (var (session, owner) in owners.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                json.WriteNumber(session, index[owner]);
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Parses a stored assignment; null with a reason when it is not one (it is then ignored, not fatal).</summary>
    public static PublishedAssignment? Parse(long version, string json, out string? error)
    {
        error = null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("nodes", out var nodesElement) || nodesElement.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("owners", out var ownersElement) || ownersElement.ValueKind != JsonValueKind.Object)
            {
                error = "expected an object with a 'nodes' array and an 'owners' object";
                return null;
            }
            var nodes = new List<string>();
            foreach (var node in nodesElement.EnumerateArray())
            {
                if (node.ValueKind != JsonValueKind.String)
                {
                    error = "a node is not a string";
                    return null;
                }
                nodes.Add(node.GetString()!);
            }
            var owners = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in ownersElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var i) || i < 0 || i >= nodes.Count)
                {
                    error = $"the owner of '{entry.Name}' is not an index into 'nodes'";
                    return null;
                }
                owners[entry.Name] = nodes[i];
            }
            return new PublishedAssignment(version, owners);
        }
        catch (JsonException e)
        {
            error = e.Message;
            return null;
        }
    }
}
