#ifndef MS_STORE_SCRIPTS_H
#define MS_STORE_SCRIPTS_H

/* Lua run inside Redis: learning and expiry must be atomic, and one script
 * call is one round trip. A token's value is ham * 2^24 + spam * 2 + recent:
 * one listpack integer, small for the rare tokens that are most of the store
 * (doc/redis-schema.md); "recent" is set by learning and cleared by the
 * sweep, which deletes tokens seen once that stayed unused for a whole
 * sweep cycle. */

#define MS_STORE_SWEEP_LUA                                                     \
	"local K = 16777216\n"                                                 \
	"local function sweep(meta, tp, n)\n"                                  \
	"  local cursor = tonumber(redis.call('HGET', meta, 'cursor') or 0)\n" \
	"  local removed = 0\n"                                                \
	"  for b = 1, n do\n"                                                  \
	"    local key = tp .. string.format('%04x', cursor)\n"                \
	"    local all = redis.call('HGETALL', key)\n"                         \
	"    local clear, drop = {}, {}\n"                                     \
	"    for i = 1, #all, 2 do\n"                                          \
	"      local v = tonumber(all[i + 1])\n"                               \
	"      if v % 2 == 1 then\n"                                           \
	"        clear[#clear + 1] = all[i]\n"                                 \
	"        clear[#clear + 1] = string.format('%.0f', v - 1)\n"           \
	"      elseif v == 2 or v == K then\n"                                 \
	"        drop[#drop + 1] = all[i]\n"                                   \
	"      end\n"                                                          \
	"    end\n"                                                            \
	"    if #clear > 0 then redis.call('HSET', key, unpack(clear)) end\n"  \
	"    if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end\n"    \
	"    removed = removed + #drop\n"                                      \
	"    cursor = (cursor + 1) % 65536\n"                                  \
	"  end\n"                                                              \
	"  redis.call('HSET', meta, 'cursor', cursor)\n"                       \
	"  return removed\n"                                                   \
	"end\n"

/* KEYS: meta, digests. ARGV: token key prefix, class (S|H), digest, tokens
 * (8 bytes each: 4 hex digits of bucket, 4 bytes of field), buckets to
 * sweep. Returns 0 learned, 1 already learned as this class, 2 moved. */
#define MS_STORE_LEARN_LUA                                                                         \
	MS_STORE_SWEEP_LUA                                                                         \
	"local meta, digests = KEYS[1], KEYS[2]\n"                                                 \
	"local tp, cls, digest, packed = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"                     \
	"local old = redis.call('HGET', digests, digest)\n"                                        \
	"if old == cls then return 1 end\n"                                                        \
	"local ntokens, result = 0, 0\n"                                                           \
	"if old then\n"                                                                            \
	"  for i = 1, #packed, 8 do\n"                                                             \
	"    local key, field = tp .. string.sub(packed, i, i + 3), string.sub(packed, i + 4, i "  \
	"+ 7)\n"                                                                                   \
	"    local v = tonumber(redis.call('HGET', key, field) or 0)\n"                            \
	"    if v > 0 then\n"                                                                      \
	"      local ham = math.floor(v / K)\n"                                                    \
	"      local low = v - ham * K\n"                                                          \
	"      local spam = math.floor(low / 2)\n"                                                 \
	"      if old == 'S' then spam = math.max(spam - 1, 0) else ham = math.max(ham - 1, 0) "   \
	"end\n"                                                                                    \
	"      if spam + ham == 0 then\n"                                                          \
	"        redis.call('HDEL', key, field)\n"                                                 \
	"        ntokens = ntokens - 1\n"                                                          \
	"      else\n"                                                                             \
	"        redis.call('HSET', key, field, string.format('%.0f', ham * K + spam * 2 + low % " \
	"2))\n"                                                                                    \
	"      end\n"                                                                              \
	"    end\n"                                                                                \
	"  end\n"                                                                                  \
	"  redis.call('HINCRBY', meta, old == 'S' and 'spam' or 'ham', -1)\n"                      \
	"  result = 2\n"                                                                           \
	"end\n"                                                                                    \
	"local delta = 2\n"                                                                        \
	"if cls == 'H' then delta = K end\n"                                                       \
	"for i = 1, #packed, 8 do\n"                                                               \
	"  local key, field = tp .. string.sub(packed, i, i + 3), string.sub(packed, i + 4, i + "  \
	"7)\n"                                                                                     \
	"  local v = redis.call('HINCRBY', key, field, delta)\n"                                   \
	"  if v == delta then ntokens = ntokens + 1 end\n"                                         \
	"  if delta == 2 and v % K < 2 then\n"                                                     \
	"    v = redis.call('HINCRBY', key, field, -2)\n"                                          \
	"  end\n"                                                                                  \
	"  if v % 2 == 0 then redis.call('HINCRBY', key, field, 1) end\n"                          \
	"end\n"                                                                                    \
	"redis.call('HINCRBY', meta, cls == 'S' and 'spam' or 'ham', 1)\n"                         \
	"redis.call('HSET', digests, digest, cls)\n"                                               \
	"ntokens = ntokens - sweep(meta, tp, tonumber(ARGV[5]))\n"                                 \
	"if ntokens ~= 0 then redis.call('HINCRBY', meta, 'tokens', ntokens) end\n"                \
	"return result\n"

/* KEYS: meta. ARGV: token key prefix, buckets to sweep. Returns the number
 * of tokens deleted. */
#define MS_STORE_EXPIRE_LUA                                                               \
	MS_STORE_SWEEP_LUA                                                                \
	"local removed = sweep(KEYS[1], ARGV[1], tonumber(ARGV[2]))\n"                    \
	"if removed > 0 then redis.call('HINCRBY', KEYS[1], 'tokens', 0 - removed) end\n" \
	"return removed\n"

#endif
