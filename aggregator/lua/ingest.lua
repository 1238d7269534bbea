-- ingest.lua: record one event of one aggregation and decide its release, atomically.
--
-- KEYS[1]  the aggregation's state hash
-- KEYS[2]  the shard's deadline sorted set (member ARGV[10], score: deadline in ms)
-- KEYS[3]  the shard's outbox stream
-- KEYS[4]  the shard's index of this flow's pending aggregations (as KEYS[2], one flow)
--
-- ARGV[1]  event field: "e:" .. digest(source, id); remembers the event for dedup
-- ARGV[2]  branch name; "" for the origin event
-- ARGV[3]  the event's record (opaque to this script)
-- ARGV[4]  expected branch count, used when this event opens the aggregation
-- ARGV[5]  timeout in ms, counted from the first arrival
-- ARGV[6]  idle timeout in ms, counted from the last new arrival; 0 for none
-- ARGV[7]  "first" or "last": which reply of a branch that replies twice is kept
-- ARGV[8]  retention in ms: life of the tombstone after the release
-- ARGV[9]  pending aggregations allowed in this shard
-- ARGV[10] the aggregation's member in the deadline set
-- ARGV[11] flow name, ARGV[12] correlation id (kept for inspection)
-- ARGV[13] where a release goes: "reply" (returned to the caller), "sink" or "dead-letter"
--          (an outbox entry for the dispatcher)
--
-- Returns {outcome}, outcome one of pending | duplicate | late | full, or
-- {"complete", fields, first arrival ms, release ms, outbox entry id} or {"replay", fields}
-- (a redelivery of the completing event); fields is the flat HGETALL of the state hash when
-- the release goes back to the caller, else nil; the entry id is nil then.
--
-- State hash fields: f flow, c correlation id, t0 first arrival (ms, Redis clock), x expected,
-- n distinct branches, q arrival counter, o origin record, b:<branch> "<seq>:<record>",
-- e:<digest> branch of an accepted event; after the release st status, rt release time,
-- ce the completing event's field, cb its branch, rm "reply" or "outbox".
-- Re-running the same call (a client retry after a timeout) finds its own event field and
-- changes nothing.

-- @include release.lua

local state, deadlines, outbox, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local event_field, branch, record = ARGV[1], ARGV[2], ARGV[3]
local retention, member, route = tonumber(ARGV[8]), ARGV[10], ARGV[13]
local branch_field = branch == '' and 'o' or ('b:' .. branch)

local cur = redis.call('HMGET', state, event_field, 'st', 'ce', 'rm', 't0', branch_field, 'n', 'x')

if cur[1] then
  if cur[3] ~= event_field then
    return {'duplicate'}
  end
  return {'replay', cur[4] == 'reply' and redis.call('HGETALL', state)}
end
if cur[2] then
  return {'late'}
end
if cur[6] and ARGV[7] == 'first' then
  return {'duplicate'}
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local t0, n, expected = tonumber(cur[5]), tonumber(cur[7]), tonumber(cur[8])
if not t0 then
  if redis.call('ZCARD', deadlines) >= tonumber(ARGV[9]) then
    return {'full'}
  end
  t0, n, expected = now, 0, tonumber(ARGV[4])
  redis.call('HSET', state, 'f', ARGV[11], 'c', ARGV[12], 't0', t0, 'x', expected, 'n', 0)
end

local seq = redis.call('HINCRBY', state, 'q', 1)
redis.call('HSET', state, branch_field, seq .. ':' .. record, event_field, branch)
local new_arrival = not cur[6]
if new_arrival and branch ~= '' then
  n = redis.call('HINCRBY', state, 'n', 1)
end

if branch ~= '' and n >= expected then
  redis.call('ZREM', deadlines, member)
  redis.call('ZREM', index, member)
  redis.call('HSET', state, 'ce', event_field, 'cb', branch)
  local fields, entry = release(state, outbox, now, 'complete', route, retention)
  return {'complete', fields or false, t0, now, entry or false}
end

-- A last-wins replacement is no new arrival: it moves no deadline.
if new_arrival then
  local deadline = t0 + tonumber(ARGV[5])
  local idle = tonumber(ARGV[6])
  if idle > 0 then
    deadline = math.min(deadline, now + idle)
  end
  redis.call('ZADD', deadlines, deadline, member)
  redis.call('ZADD', index, deadline, member)
  redis.call('PEXPIREAT', state, deadline + retention)
end
return {'pending'}
