-- expire.lua: release the due aggregations of one shard (the timeout sweeper), or release or
-- discard one aggregation now (the admin API). Claiming is the atomic removal from the
-- deadline set, so a release by an ingest call and one by this script exclude each other.
--
-- KEYS[1]     the shard's deadline sorted set
-- KEYS[2]     the shard's outbox stream
-- KEYS[1+2i]  state hash of aggregation i
-- KEYS[2+2i]  the shard's index of the pending aggregations of i's flow
--
-- ARGV[1]     "due": only aggregations whose deadline has passed; "now": regardless
-- ARGV[4i-2]  member of aggregation i in the deadline set
-- ARGV[4i-1]  status: timeout | manual | discarded
-- ARGV[4i]    route: sink | dead-letter | none
-- ARGV[4i+1]  retention in ms
--
-- Returns {now, t0 1, correlation id 1, t0 2, ...}: for each aggregation this call released
-- its first-arrival time and correlation id; 0 and "" for each it left alone (not due,
-- released already, or gone).

-- @include release.lua

local deadlines, outbox = KEYS[1], KEYS[2]
local only_due = ARGV[1] == 'due'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local results = {now}

for i = 1, (#KEYS - 2) / 2 do
  local state, index = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local member, status, route = ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i]
  local score = tonumber(redis.call('ZSCORE', deadlines, member))
  local t0, correlation = 0, ''
  if not (only_due and (not score or score > now)) then
    redis.call('ZREM', deadlines, member)
    redis.call('ZREM', index, member)
    local cur = redis.call('HMGET', state, 't0', 'st', 'c')
    if cur[1] and not cur[2] then
      t0, correlation = tonumber(cur[1]), cur[3]
      release(state, outbox, now, status, route, tonumber(ARGV[4 * i + 1]))
    end
  end
  results[#results + 1] = t0
  results[#results + 1] = correlation
end
return results
