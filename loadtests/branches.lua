-- wrk script: the branch events of Parallel runs, in CloudEvents binary mode.
--
-- Request n belongs to run n // BENCH_BRANCHES and carries branch n % BENCH_BRANCHES; wrk
-- hands consecutive requests to different connections, so the branches of a run arrive
-- interleaved over connections, as from a channel dispatcher. Correlation ids are fresh for
-- every invocation (BENCH_RUN) and thread.
--
-- Environment: BENCH_RUN (unique per invocation), BENCH_BRANCHES (4), BENCH_PAYLOAD (bytes
-- of JSON body, 512), BENCH_FLOW (bench).

local run = os.getenv("BENCH_RUN") or tostring(os.time())
local branches = tonumber(os.getenv("BENCH_BRANCHES") or "4")
local size = tonumber(os.getenv("BENCH_PAYLOAD") or "512")
local flow = os.getenv("BENCH_FLOW") or "bench"

local next_thread = 0
function setup(thread)
    thread:set("thread_id", next_thread)
    next_thread = next_thread + 1
end

local body
local sent = 0
function init(args)
    local padding = size - string.len('{"result":""}')
    body = '{"result":"' .. string.rep("x", padding) .. '"}'
end

function request()
    local n = sent
    sent = sent + 1
    local correlation = string.format("%s-%d-%d", run, thread_id, math.floor(n / branches))
    local branch = "b" .. (n % branches)
    local headers = {
        ["ce-specversion"] = "1.0",
        ["ce-id"] = correlation .. "/" .. branch,
        ["ce-source"] = "/bench/" .. branch,
        ["ce-type"] = "com.example.bench.result",
        ["ce-correlationid"] = correlation,
        ["content-type"] = "application/json",
    }
    return wrk.format("POST", "/flows/" .. flow .. "/branches/" .. branch, headers, body)
end

-- The latency distribution, for loadtests.bench: "percentile <p> <microseconds>" lines.
function done(summary, latency, requests)
    for _, p in ipairs({10, 25, 50, 75, 90, 95, 99, 99.9}) do
        io.write(string.format("percentile %g %d\n", p, latency:percentile(p)))
    end
end
