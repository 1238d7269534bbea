-- settle.lua: finish one outbox entry: acknowledge and delete it and, when it could not be
-- delivered, keep it in the shard's dead-letter store, in one step.
--
-- KEYS[1]  the shard's outbox stream
-- KEYS[2]  the shard's dead-letter hash (id -> entry)
-- KEYS[3]  the shard's dead-letter index (sorted set, score: creation time in ms)
--
-- ARGV[1]  consumer group
-- ARGV[2]  outbox entry id
-- ARGV[3]  dead-letter id; "" when the entry was delivered
-- ARGV[4]  dead-letter entry (opaque)
-- ARGV[5]  dead letters kept per shard at most (the oldest go first)
-- ARGV[6]  dead-letter retention in ms
--
-- Returns the number of dead letters dropped to stay within the bounds.

local outbox, letters, index = KEYS[1], KEYS[2], KEYS[3]
redis.call('XACK', outbox, ARGV[1], ARGV[2])
redis.call('XDEL', outbox, ARGV[2])
if ARGV[3] == '' then
  return 0
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local retention = tonumber(ARGV[6])
redis.call('HSET', letters, ARGV[3], ARGV[4])
redis.call('ZADD', index, now, ARGV[3])

local dropped = redis.call('ZRANGEBYSCORE', index, '-inf', now - retention, 'LIMIT', 0, 100)
local excess = math.min(redis.call('ZCARD', index) - #dropped - tonumber(ARGV[5]), 1000)
if excess > 0 then
  local oldest = redis.call('ZRANGE', index, #dropped, #dropped + excess - 1)
  for _, id in ipairs(oldest) do
    dropped[#dropped + 1] = id
  end
end
if #dropped > 0 then
  redis.call('ZREM', index, unpack(dropped))
  redis.call('HDEL', letters, unpack(dropped))
end
redis.call('PEXPIRE', letters, retention)
redis.call('PEXPIRE', index, retention)
return #dropped
