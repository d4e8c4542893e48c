using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace PollLease.Election;

/// <summary>
/// Several roles for one instance: each role is its own <see cref="LeaderElection"/> with its own
/// key, token and callbacks, over one connection and one set of timings; the status is aggregated.
/// </summary>
public sealed class RoleManager : IAsyncDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly ElectionOptions _template;
    private readonly TimeProvider? _time;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly Dictionary<string, LeaderElection> _elections = new(StringComparer.Ordinal);
    private bool _started;

    /// <summary>Creates a manager; <paramref name="template"/> supplies prefix, instance id and timings (its Role is ignored).</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="template">Options shared by every role.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="meterFactory">Metrics.</param>
    public RoleManager(IConnectionMultiplexer redis, ElectionOptions template, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(template);
        _redis = redis;
        _template = template;
        _time = timeProvider;
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
    }

    /// <summary>The roles added, in order.</summary>
    public IReadOnlyCollection<string> Roles => _elections.Keys;

    /// <summary>Adds a role before <see cref="StartAsync"/>; the options (with this role) are validated here.</summary>
    /// <param name="role">The role name.</param>
    /// <param name="callbacks">The role's callbacks.</param>
    public LeaderElection AddRole(string role, ElectionCallbacks? callbacks = null)
    {
        if (_started)
        {
            throw new InvalidOperationException("Roles must be added before the role manager starts.");
        }
        if (_elections.ContainsKey(role))
        {
            throw new ArgumentException($"Role '{role}' was already added.", nameof(role));
        }
        var election = new LeaderElection(_redis, _template.WithRole(role), callbacks, _time, _loggerFactory, _meterFactory);
        _elections.Add(role, election);
        return election;
    }

    /// <summary>The election of <paramref name="role"/>.</summary>
    /// <param name="role">A role added with <see cref="AddRole"/>.</param>
    public LeaderElection this[string role] => _elections.TryGetValue(role, out var e) ? e : throw new KeyNotFoundException($"Role '{role}' was not added.");

    /// <summary>True while this instance leads <paramref name="role"/>.</summary>
    /// <param name="role">A role added with <see cref="AddRole"/>.</param>
    public bool IsLeader(string role) => this[role].IsLeader;

    /// <summary>Every role's status, by role.</summary>
    public IReadOnlyDictionary<string, ElectionStatus> Status => _elections.ToDictionary(e => e.Key, e => e.Value.Status, StringComparer.Ordinal);

    /// <summary>The roles this instance leads now.</summary>
    public IReadOnlyList<string> LeadingRoles => _elections.Where(e => e.Value.IsLeader).Select(e => e.Key).ToArray();

    /// <summary>Starts every role's election.</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _started = true;
        foreach (var election in _elections.Values)
        {
            await election.StartAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops every role's election together; true when every OnDemote finished in time.</summary>
    /// <param name="options">Applied to each role.</param>
    /// <param name="cancellationToken">Abandons the waits.</param>
    public async Task<bool> StopAsync(ElectionStopOptions? options = null, CancellationToken cancellationToken = default)
    {
        var results = await Task.WhenAll(_elections.Values.Select(e => e.StopAsync(options, cancellationToken))).ConfigureAwait(false);
        return results.All(r => r);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var election in _elections.Values)
        {
            await election.DisposeAsync().ConfigureAwait(false);
        }
    }
}
