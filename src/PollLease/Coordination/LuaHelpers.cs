namespace PollLease.Coordination;

/// <summary>
/// The Lua functions every script of the library shares (the lease cycle, the election, the janitor, the published
/// assignment), written once here and put in front of each script's body as a constant (<c>LuaHelpers.Prelude +
/// body</c>: every script stays a const string). A fix to one of them (how time is read, how a token is minted, how a
/// key of the wrong type is treated) reaches every script.
/// </summary>
internal static class LuaHelpers
{
    /// <summary>
    /// <c>server_ms()</c>: the server's time in milliseconds. Every deadline in Redis is on the server's clock, never a
    /// client's, so clients with skewed clocks still agree. <c>get(key)</c>: GET that answers <c>'wrong-type'</c> for a
    /// key of another type (written by hand) instead of failing the whole script. <c>mint(fence, now)</c>: the next
    /// fencing token, <c>max(last + 1, now)</c>, stored in <c>fence</c>: strictly increasing per key, and
    /// still increasing after Redis restarts empty (server time has moved on). <c>holds(key, value)</c>: true while
    /// <c>key</c> holds exactly <c>value</c>, the guard of every write done on behalf of a role or a lease.
    /// <c>owned(value, mine)</c>: true when <c>value</c> is a value of the owner whose prefix <c>owner|</c> is <c>mine</c>.
    /// </summary>
    public const string Prelude = """
        local function server_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function get(key)
          local value = redis.pcall('GET', key)
          if type(value) == 'table' and value.err then return 'wrong-type' end
          return value
        end
        local function mint(fence, now)
          local last = tonumber(get(fence)) or 0
          local tok = string.format('%d', math.max(last + 1, now))
          redis.call('SET', fence, tok)
          return tok
        end
        local function holds(key, value)
          return get(key) == value
        end
        local function owned(value, mine)
          return value ~= nil and value ~= false and string.sub(value, 1, #mine) == mine
        end

        """;
}
