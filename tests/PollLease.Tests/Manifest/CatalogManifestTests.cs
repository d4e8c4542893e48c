using PollCtl.Manifest;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Manifest;

public sealed class CatalogManifestTests(RedisServerFixture fixture) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly string _dir = Directory.CreateTempSubdirectory("pollapply-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IReadOnlyList<PollSession> Manifest(params string[] ids) =>
        CatalogManifest.Parse("{\"sessions\":[" + string.Join(",", ids.Select(id => $"{{\"id\":\"{id}\",\"target\":\"t-{id}\",\"intervalSeconds\":10}}")) + "]}", "test");

    [Fact]
    public async Task Apply_adds_updates_and_removes_only_what_earlier_applies_created()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        await catalog.AddAsync("app-owned", "t", TimeSpan.FromSeconds(5));
        var state = Path.Combine(_dir, "state.json");

        var first = await CatalogManifest.ApplyAsync(catalog, Manifest("a", "b", "app-owned"), state, TimeSpan.FromSeconds(5));
        Assert.Equal(["a", "b"], first.Added);
        Assert.Equal(["app-owned"], first.Updated);

        var dry = await CatalogManifest.ApplyAsync(catalog, Manifest("a"), state, TimeSpan.FromSeconds(5), dryRun: true);
        Assert.Equal(["b"], dry.Removed);
        Assert.NotNull(await catalog.GetAsync("b"));

        var second = await CatalogManifest.ApplyAsync(catalog, Manifest("a"), state, TimeSpan.FromSeconds(5));
        Assert.Equal(["b"], second.Removed);
        Assert.Equal(["a"], second.Unchanged);
        Assert.Null(await catalog.GetAsync("b"));
        Assert.NotNull(await catalog.GetAsync("app-owned")); // created by the application, never removed
    }

    [Fact]
    public async Task Ten_concurrent_applies_all_complete_and_every_session_is_present()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        var state = Path.Combine(_dir, "state.json");
        var ids = Enumerable.Range(0, 10).Select(i => $"s{i}").ToArray();

        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Task.Run(() => CatalogManifest.ApplyAsync(catalog, Manifest(ids), state, TimeSpan.FromSeconds(30)))));

        Assert.Equal(10, results.Length);
        Assert.Equal(10, results.Sum(r => r.Added.Count)); // serialized: exactly one apply added each session
        Assert.Equal(ids, (await catalog.ListAsync()).Select(s => s.Id));
    }

    [Theory]
    [InlineData("{\"sessions\":[{\"id\":\"a\",\"target\":\"t\",\"intervalSeconds\":10},{\"id\":\"a\",\"target\":\"u\",\"intervalSeconds\":10}]}", "lists session 'a' more than once")]
    [InlineData("{\"sessions\":[{\"id\":\"a:b\",\"target\":\"t\",\"intervalSeconds\":10}]}", "Session id 'a:b' is invalid")]
    [InlineData("{\"sessions\":[{\"id\":\"a\",\"target\":\"t\",\"intervalSeconds\":2}]}", "interval = 2 s is invalid")]
    [InlineData("{\"nope\":1}", "needs a \"sessions\" array")]
    [InlineData("not json", "is not a valid manifest")]
    public void Bad_manifests_fail_with_a_clear_message(string json, string message)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => CatalogManifest.Parse(json, "m.json"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
