using PollLease.ChaosTests.Harness;
using PollLease.Polling;

namespace PollLease.ChaosTests;

/// <summary>The checker itself: each figure counts the violation it names, and only that.</summary>
public sealed class ChaosCheckerTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static PollRecord Poll(string instance, long token, double seconds) => new(instance, token, T0.AddSeconds(seconds), T0.AddSeconds(seconds));

    private static long TokenAt(double seconds) => T0.AddSeconds(seconds).ToUnixTimeMilliseconds();

    private static ChaosFigures Check(List<PollRecord> log, IReadOnlyList<PollStart>? starts = null, string[]? catalog = null) =>
        ChaosChecker.Check(new Dictionary<string, List<PollRecord>> { ["s"] = log }, starts ?? [], [], ["s"], catalog ?? ["s"], T0, T0.AddSeconds(12), TimeSpan.FromSeconds(8));

    [Fact]
    public void A_clean_handover_has_no_violation_and_its_gap_is_measured()
    {
        var figures = Check([Poll("a", TokenAt(0), 0), Poll("a", TokenAt(0), 4), Poll("b", TokenAt(8.5), 9), Poll("b", TokenAt(8.5), 11)]);
        Assert.Equal((0, 0, 0, 0, 1), (figures.DuplicateOwnerWindows, figures.StaleAppends, figures.PollsOutsideLeaseWindow, figures.SessionsLost, figures.Handovers));
        Assert.Equal(TimeSpan.FromSeconds(5), figures.LongestGap);
        Assert.Empty(figures.Violations);
    }

    [Fact]
    public void An_old_owner_polling_after_the_new_one_began_is_a_duplicate_owner_window()
    {
        var figures = Check([Poll("a", TokenAt(0), 0), Poll("b", TokenAt(3), 3.5), Poll("a", TokenAt(0), 4), Poll("b", TokenAt(3), 7.5)]);
        Assert.Equal(1, figures.DuplicateOwnerWindows);
        Assert.Equal(1, figures.StaleAppends); // a's append under the older token came after b's
    }

    [Fact]
    public void One_token_used_by_two_instances_is_a_duplicate_owner_window()
    {
        var figures = Check([Poll("a", TokenAt(0), 0), Poll("b", TokenAt(0), 4)]);
        Assert.Equal(1, figures.DuplicateOwnerWindows);
        Assert.Equal(0, figures.StaleAppends);
    }

    [Fact]
    public void A_poll_started_after_a_newer_token_was_granted_is_outside_its_lease_window()
    {
        var log = new List<PollRecord> { Poll("a", TokenAt(0), 0), Poll("b", TokenAt(5), 5.1) };
        Assert.Equal(1, Check(log, [new PollStart("a", "s", TokenAt(0), T0.AddSeconds(6))]).PollsOutsideLeaseWindow);
        Assert.Equal(0, Check(log, [new PollStart("a", "s", TokenAt(0), T0.AddSeconds(4))]).PollsOutsideLeaseWindow);
    }

    [Fact]
    public void A_session_missing_from_the_catalog_is_lost_and_a_silent_one_has_a_long_gap()
    {
        var figures = Check([Poll("a", TokenAt(0), 1)], catalog: []);
        Assert.Equal(1, figures.SessionsLost);
        Assert.Equal(TimeSpan.FromSeconds(11), figures.LongestGap);
    }

    [Fact]
    public void Output_lines_are_parsed_with_their_utc_time()
    {
        var received = new DateTimeOffset(2026, 11, 29, 0, 0, 0, 200, TimeSpan.Zero);
        var (starts, acquired) = ChaosChecker.ParseOutput(
        [
            new OutputLine(received, "23:59:59.900 info: PollLease.Polling[2001] Poll started: instance=i1 endpoint=s1 token=42"),
            new OutputLine(received, "00:00:00.100 info: PollLease.Leases[1001] Lease acquired: instance=i2 endpoint=s1 token=43"),
        ]);
        Assert.Equal(new PollStart("i1", "s1", 42, new DateTimeOffset(2026, 11, 28, 23, 59, 59, 900, TimeSpan.Zero)), Assert.Single(starts));
        Assert.Equal(("s1", 43L), Assert.Single(acquired));
    }
}
