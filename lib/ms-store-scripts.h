#ifndef MS_STORE_SCRIPTS_H
#define MS_STORE_SCRIPTS_H

/* The expiry sweep, run inside Redis (atomic, one call). The token table is
 * one string of 2^bits slots of 40 bits (doc/redis-schema.md): ham u20, spam
 * u19, recent u1, so slot N is bytes 5N to 5N+4 and the mark is the low bit
 * of its last byte. "recent" is set by every learn that touches the slot
 * and cleared here; a slot seen once in all (ham = 1 or spam = 1, the other
 * 0) whose mark was already clear, that is unused for a whole cycle, is
 * emptied. The slots are read with one GETRANGE and written back with one
 * SETRANGE: measured, BITFIELD with three arguments per slot built in Lua
 * cost eight times as much (doc/redis-schema.md).
 * KEYS: meta, table. ARGV: table bits, slots to visit. Returns how many
 * slots were emptied. */
#define MS_STORE_SWEEP_LUA                                                                   \
	"local meta, tab = KEYS[1], KEYS[2]\n"                                               \
	"local have = redis.call('HGET', meta, 'bits')\n"                                    \
	"if have and have ~= ARGV[1] then\n"                                                 \
	"  return redis.error_reply('token table has 2^' .. have .. ' slots, not 2^' .. "    \
	"ARGV[1])\n"                                                                         \
	"end\n"                                                                              \
	"local nslots, n = 2 ^ tonumber(ARGV[1]), tonumber(ARGV[2])\n"                       \
	"local cursor = tonumber(redis.call('HGET', meta, 'cursor') or 0) % nslots\n"        \
	"if n > nslots then n = nslots end\n"                                                \
	"local removed, done = 0, 0\n"                                                       \
	"local byte, char, sub = string.byte, string.char, string.sub\n"                     \
	"while done < n do\n"                                                                \
	"  local m = math.min(n - done, 1024, nslots - cursor)\n"                            \
	"  local s = redis.call('GETRANGE', tab, cursor * 5, (cursor + m) * 5 - 1)\n"        \
	"  local out, changed = {}, false\n"                                                 \
	"  for i = 0, math.floor(#s / 5) - 1 do\n"                                           \
	"    local b1, b2, b3, b4, b5 = byte(s, i * 5 + 1, i * 5 + 5)\n"                     \
	"    local v = (((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5\n"               \
	"    if b5 % 2 == 1 then\n"                                                          \
	"      out[i + 1] = char(b1, b2, b3, b4, b5 - 1); changed = true\n"                  \
	"    elseif v == 2 or v == 1048576 then\n"                                           \
	"      out[i + 1] = '\\0\\0\\0\\0\\0'; changed = true; removed = removed + 1\n"      \
	"    else\n"                                                                         \
	"      out[i + 1] = sub(s, i * 5 + 1, i * 5 + 5)\n"                                  \
	"    end\n"                                                                          \
	"  end\n"                                                                            \
	"  if changed then redis.call('SETRANGE', tab, cursor * 5, table.concat(out)) end\n" \
	"  cursor = (cursor + m) % nslots\n"                                                 \
	"  done = done + m\n"                                                                \
	"end\n"                                                                              \
	"redis.call('HSET', meta, 'cursor', cursor)\n"                                       \
	"if removed > 0 then redis.call('HINCRBY', meta, 'tokens', 0 - removed) end\n"       \
	"return removed\n"

#endif
