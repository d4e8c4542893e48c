using PollLease.ChaosTests.Harness;

namespace PollLease.ChaosTests;

/// <summary>The poll-log checker on hand-made log lines: it counts a second poller, and only that.</summary>
public sealed class PollLogCheckerTests
{
    private static readonly DateTimeOffset Day = new(2026, 11, 30, 0, 0, 0, TimeSpan.Zero);

    private static OutputLine Started(string instance, string session, long token, double seconds) =>
        new(Day.AddSeconds(seconds), $"{Day.AddSeconds(seconds):HH:mm:ss.fff} info: PollLease.Polling[2001] Poll started: instance={instance} endpoint={session} token={token}");

    [Fact]
    public void A_clean_handover_is_no_violation()
    {
        var figures = PollLogChecker.Check([Started("a", "s", 1, 0), Started("a", "s", 1, 4), Started("b", "s", 2, 8), Started("b", "s", 2, 12)]);
        Assert.Equal((0, 4), (figures.DuplicateOwners, figures.PollsStarted));
        Assert.Empty(figures.Violations);
    }

    [Fact]
    public void An_old_owner_starting_a_poll_after_the_new_owner_began_is_a_duplicate_owner()
    {
        // The fence would refuse the old owner's write; the upstream call was made anyway.
        var figures = PollLogChecker.Check([Started("a", "s", 1, 0), Started("b", "s", 2, 3.9), Started("a", "s", 1, 4)]);
        Assert.Equal(1, figures.DuplicateOwners);
    }

    [Fact]
    public void One_token_polled_under_by_two_instances_is_a_duplicate_owner_and_other_sessions_do_not_count()
    {
        var figures = PollLogChecker.Check([Started("a", "s", 1, 0), Started("b", "s", 1, 4), Started("a", "t", 1, 0), Started("b", "t", 2, 5)]);
        Assert.Equal(1, figures.DuplicateOwners);
        Assert.Contains("token 1 polled under by a and b", Assert.Single(figures.Violations), StringComparison.Ordinal);
    }
}
