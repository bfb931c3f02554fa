#ifndef MS_STORE_SCRIPTS_H
#define MS_STORE_SCRIPTS_H

/* The expiry sweep, run inside Redis (atomic, one call). The token table is
 * one string of 2^bits slots of 40 bits (doc/redis-schema.md): ham u20, spam
 * u19, recent u1. "recent" is set by every learn that touches the slot and
 * cleared here; a slot seen once in all (ham = 1 or spam = 1, the other 0)
 * whose mark was already clear, that is unused for a whole cycle, is
 * emptied.
 * KEYS: meta, table. ARGV: table bits, slots to visit. Returns how many
 * slots were emptied. */
#define MS_STORE_SWEEP_LUA                                                                     \
	"local meta, tab, W = KEYS[1], KEYS[2], 40\n"                                          \
	"local have = redis.call('HGET', meta, 'bits')\n"                                      \
	"if have and have ~= ARGV[1] then\n"                                                   \
	"  return redis.error_reply('token table has 2^' .. have .. ' slots, not 2^' .. "      \
	"ARGV[1])\n"                                                                           \
	"end\n"                                                                                \
	"local nslots, n = 2 ^ tonumber(ARGV[1]), tonumber(ARGV[2])\n"                         \
	"local cursor = tonumber(redis.call('HGET', meta, 'cursor') or 0) % nslots\n"          \
	"if n > nslots then n = nslots end\n"                                                  \
	"local removed, done = 0, 0\n"                                                         \
	"while done < n do\n"                                                                  \
	"  local m = math.min(n - done, 1024, nslots - cursor)\n"                              \
	"  local get = {}\n"                                                                   \
	"  for i = 0, m - 1 do\n"                                                              \
	"    get[#get + 1] = 'GET'; get[#get + 1] = 'u40'; get[#get + 1] = (cursor + i) * W\n" \
	"  end\n"                                                                              \
	"  local vals = redis.call('BITFIELD_RO', tab, unpack(get))\n"                         \
	"  local set = {}\n"                                                                   \
	"  for i = 1, m do\n"                                                                  \
	"    local v, off = vals[i], (cursor + i - 1) * W\n"                                   \
	"    if v % 2 == 1 then\n"                                                             \
	"      set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = off + 39\n"        \
	"      set[#set + 1] = 0\n"                                                            \
	"    elseif v == 2 or v == 1048576 then\n"                                             \
	"      set[#set + 1] = 'SET'; set[#set + 1] = 'u40'; set[#set + 1] = off\n"            \
	"      set[#set + 1] = 0\n"                                                            \
	"      removed = removed + 1\n"                                                        \
	"    end\n"                                                                            \
	"  end\n"                                                                              \
	"  if #set > 0 then redis.call('BITFIELD', tab, unpack(set)) end\n"                    \
	"  cursor = (cursor + m) % nslots\n"                                                   \
	"  done = done + m\n"                                                                  \
	"end\n"                                                                                \
	"redis.call('HSET', meta, 'cursor', cursor)\n"                                         \
	"if removed > 0 then redis.call('HINCRBY', meta, 'tokens', 0 - removed) end\n"         \
	"return removed\n"

#endif
