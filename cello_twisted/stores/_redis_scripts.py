"""Server-side Lua scripts for the Redis stores: each one runs atomically inside Redis.

Numbers travel as strings written by Python's ``repr`` (exact doubles) and are
passed to Redis unchanged; results come back as ``%.17g`` strings. Lua's own
``tostring`` (14 digits) is never used, so the arithmetic is bit-for-bit that of
the memory store.
"""

from __future__ import annotations

# KEYS[1] zset of allowed hits (score = time, member unique)
# ARGV: horizon (now - window), now, limit, member, ttl_ms
# -> {allowed 0/1, count before this hit, oldest score as string}
SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {allowed, count, oldest or ARGV[2]}
"""

# KEYS[1] hash {tokens, stamp}
# ARGV: capacity, rate (tokens per second), now, ttl_ms, epsilon
# -> {allowed 0/1, tokens left as string}
TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local eps = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = capacity
if state[1] and state[2] then
  tokens = math.min(capacity, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
end
local allowed = 0
if tokens >= 1.0 - eps then
  tokens = math.max(0.0, tokens - 1.0)
  allowed = 1
end
local text = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 'tokens', text, 'stamp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {allowed, text}
"""

# KEYS[1] revocation entry; ARGV: expires_at (string), ttl_ms
# Keeps the later expiry when a key is revoked twice (like the memory store).
REVOKE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
