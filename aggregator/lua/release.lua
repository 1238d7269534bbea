-- release.lua: included by the scripts that release an aggregation (not run on its own).
--
-- release(state, outbox, now, status, route, retention)
--   state      the aggregation's state hash (a key of the including script)
--   outbox     the shard's outbox stream (a key of the including script)
--   status     complete | timeout | manual | discarded
--   route      "reply": the caller answers with the event, the payloads stay for replays;
--              "sink" | "dead-letter": an outbox entry for the dispatcher;
--              "none": nothing is delivered (discarded)
--   retention  ms the tombstone lives
-- Returns the flat HGETALL of the state for "reply", else nil; and the outbox entry's id, if
-- it wrote one. The caller has already taken the aggregation off the deadline set.
local function release(state, outbox, now, status, route, retention)
  redis.call('HSET', state, 'st', status, 'rt', now)
  if route == 'reply' then
    redis.call('HSET', state, 'rm', 'reply')
    redis.call('PEXPIRE', state, retention)
    return redis.call('HGETALL', state)
  end
  -- The outbox entry carries everything the aggregated event is built from; the tombstone
  -- keeps only what recognises late and duplicate events.
  local fields = redis.call('HGETALL', state)
  local entry, payloads = {'route', route}, {}
  for i = 1, #fields, 2 do
    local name = fields[i]
    local kind = string.sub(name, 1, 2)
    if kind ~= 'e:' then
      entry[#entry + 1] = name
      entry[#entry + 1] = fields[i + 1]
    end
    if kind == 'b:' or name == 'o' then
      payloads[#payloads + 1] = name
    end
  end
  local id = nil
  if route ~= 'none' then
    id = redis.call('XADD', outbox, '*', unpack(entry))
  end
  if #payloads > 0 then
    redis.call('HDEL', state, unpack(payloads))
  end
  redis.call('HSET', state, 'rm', 'outbox')
  redis.call('PEXPIRE', state, retention)
  return nil, id
end
