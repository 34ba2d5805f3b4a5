package deadprops

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/net/webdav"

	"bridge/cluster"
)

// RedisStore is the property store of several bridge instances sharing one
// Redis: what a PROPPATCH, a kept time or a MOVE changes through one
// instance is what every other instance reads next. It behaves as Store
// does, record for record (the same bytes), and is safe for concurrent use
// by any number of instances.
//
// Layout, for each kind k of record (deadprops, modtimes, patchedtimes):
//
//	<prefix>props:<k>:dir:<folder>  hash: name in the folder → record
//	<prefix>props:<k>:index         sorted set (scores 0) of the folders
//	                                whose hash is not empty
//
// A path is cut at its last "/": "/m/a/f" is field "f" of folder "/m/a",
// "/m" field "m" of folder "", "/" field "" of folder "". A listing's kept
// times are then one HGETALL, and a subtree (a path and everything below
// it) is the path's own field plus the hashes of the folders equal to the
// path or below it, found by one ZRANGEBYLEX on the index: never a SCAN of
// the keyspace, and no glob pattern, so "*?[]\" in names need no escaping.
//
// Writes that read first are atomic: Lua scripts for Move, Copy and Delete
// (one script moves a whole subtree and keeps the index exact), and a
// compare-and-set script for Patch, retried when another instance changed
// the same resource in between, so that no instance loses another's write.
// The scripts compute the keys of the folders they touch, so the server
// must be one Redis (or a replica set), not a Redis Cluster.
//
// Whatever Redis fails to answer is an error wrapping
// drivers.ErrStateUnavailable (503), never a local fallback.
type RedisStore struct {
	r      *cluster.Redis
	limits Limits
}

// opTimeout bounds one method's Redis calls: davfs's calls carry no
// context, and a Redis that is gone must soon become a 503.
const opTimeout = 5 * time.Second

// patchAttempts bounds Patch's compare-and-set retries: each failed one
// means another instance's write to the same resource went through.
const patchAttempts = 100

// OpenRedis is the property store kept in r, with DefaultLimits. The
// store does not own r: closing r is the caller's.
func OpenRedis(r *cluster.Redis) *RedisStore {
	return &RedisStore{r: r, limits: DefaultLimits}
}

// WithLimits returns the store with limits l (zero fields: the default),
// over the same keys.
func (s *RedisStore) WithLimits(l Limits) *RedisStore {
	return &RedisStore{r: s.r, limits: l.orDefault()}
}

// Limits returns the store's limits.
func (s *RedisStore) Limits() Limits { return s.limits.orDefault() }

// hashKey is the key of folder's hash of records of kind.
func (s *RedisStore) hashKey(kind, folder string) string {
	return s.r.Key("props", kind, "dir", folder)
}

// hashPrefix is hashKey without the folder, for the scripts.
func (s *RedisStore) hashPrefix(kind string) string { return s.hashKey(kind, "") }

func (s *RedisStore) indexKey(kind string) string { return s.r.Key("props", kind, "index") }

// split cuts path at its last "/" into its folder and its name there.
func split(path string) (folder, name string, err error) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", "", fmt.Errorf("deadprops: %q is not a share path", path)
	}
	return path[:i], path[i+1:], nil
}

// below returns what subtree records hang under: the records strictly
// below path are the fields of folder base and of every folder that
// starts with prefix (base + "/"; for "/", everything).
func below(path string) (base, prefix string) {
	prefix = path + "/"
	if path == "/" {
		prefix = "/"
	}
	return prefix[:len(prefix)-1], prefix
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// fail wraps a Redis failure of op on path.
func fail(op, path string, err error) error {
	return cluster.Unavailable("deadprops: "+op+" "+path, err)
}

// hget reads the record of kind at path.
func (s *RedisStore) hget(op, kind, path string) ([]byte, bool, error) {
	folder, name, err := split(path)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := opContext()
	defer cancel()
	v, err := s.r.Client().HGet(ctx, s.hashKey(kind, folder), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fail(op, path, err)
	}
	return v, true, nil
}

// put sets (v non-nil) or removes (v nil) the record of kind at path,
// without looking at what was there.
func (s *RedisStore) put(op, kind, path string, v []byte) error {
	folder, name, err := split(path)
	if err != nil {
		return err
	}
	next := ""
	if v != nil {
		next = "=" + string(v)
	}
	ctx, cancel := opContext()
	defer cancel()
	err = casScript.Run(ctx, s.r.Client(), []string{s.hashKey(kind, folder), s.indexKey(kind)},
		folder, name, "*", next).Err()
	return fail(op, path, err)
}

// casScript sets or removes one record and keeps the index exact.
// KEYS: the folder's hash, the index. ARGV: folder, name, what the record
// must be for the change to happen ("*" anything, "" absent, "=" + value),
// and the new record ("" removes it, "=" + value sets it). It answers 1
// when it changed it, 0 when the record was not as expected.
var casScript = redis.NewScript(`
if ARGV[3] ~= "*" then
	local cur = redis.call("HGET", KEYS[1], ARGV[2])
	if cur then cur = "=" .. cur else cur = "" end
	if cur ~= ARGV[3] then return 0 end
end
if ARGV[4] == "" then
	if redis.call("HDEL", KEYS[1], ARGV[2]) == 1 and redis.call("EXISTS", KEYS[1]) == 0 then
		redis.call("ZREM", KEYS[2], ARGV[1])
	end
else
	redis.call("HSET", KEYS[1], ARGV[2], string.sub(ARGV[4], 2))
	redis.call("ZADD", KEYS[2], 0, ARGV[1])
end
return 1
`)

// Get returns the properties of path (nil when it has none).
func (s *RedisStore) Get(path string) (map[xml.Name]webdav.Property, error) {
	v, ok, err := s.hget("get", kindProps, path)
	if err != nil || !ok {
		return nil, err
	}
	return decode(v)
}

// Patch applies PROPPATCH instructions to path, all of them or none, as
// Store.Patch does. It reads the record, applies the patches and the
// limits, and writes the result only if the record is still what it read;
// otherwise (another instance patched the resource meanwhile) it starts
// over from the new record.
func (s *RedisStore) Patch(path string, patches []webdav.Proppatch) error {
	lim := s.Limits()
	folder, name, err := split(path)
	if err != nil {
		return err
	}
	keys := []string{s.hashKey(kindProps, folder), s.indexKey(kindProps)}
	ctx, cancel := opContext()
	defer cancel()
	for range patchAttempts {
		old, err := s.r.Client().HGet(ctx, keys[0], name).Bytes()
		found := err == nil
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("patch", path, err)
		}
		props := map[xml.Name]webdav.Property{}
		if found {
			if props, err = decode(old); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := apply(path, props, patches, lim); err != nil {
			return err
		}
		expect, next := "", ""
		if found {
			expect = "=" + string(old)
		}
		if len(props) > 0 {
			v, err := encode(props)
			if err != nil {
				return err
			}
			next = "=" + string(v)
		} else if !found {
			return nil // nothing to remove
		}
		done, err := casScript.Run(ctx, s.r.Client(), keys, folder, name, expect, next).Int()
		if err != nil {
			return fail("patch", path, err)
		}
		if done == 1 {
			return nil
		}
	}
	return fmt.Errorf("deadprops: patch %s: changed by others %d times in a row: %w",
		path, patchAttempts, cluster.ErrUnavailable)
}

// subtreeScript deletes, copies or moves a subtree in every kind it is
// given, with Store's semantics: the destination's subtree is emptied
// first, then each record of the source's is written under the
// destination (and, for a move, removed from the source).
// KEYS: the index of each kind. ARGV: "del", "copy" or "move"; the source
// (the path deleted, for "del"); the destination; then the hash key
// prefix of each kind, in KEYS' order.
var subtreeScript = redis.NewScript(`
local op, src, dst = ARGV[1], ARGV[2], ARGV[3]

local function split(p)
	local i = string.find(p, "/[^/]*$")
	return string.sub(p, 1, i - 1), string.sub(p, i + 1)
end

local function put(index, hp, p, v)
	local f, n = split(p)
	redis.call("HSET", hp .. f, n, v)
	redis.call("ZADD", index, 0, f)
end

local function del(index, hp, p)
	local f, n = split(p)
	if redis.call("HDEL", hp .. f, n) == 1 and redis.call("EXISTS", hp .. f) == 0 then
		redis.call("ZREM", index, f)
	end
end

-- the folders holding the records strictly below p
local function folders(index, p)
	local prefix = p .. "/"
	if p == "/" then prefix = "/" end
	local base = string.sub(prefix, 1, -2)
	local list = redis.call("ZRANGEBYLEX", index, "[" .. prefix, "(" .. base .. "0")
	table.insert(list, 1, base)
	return list
end

-- p's record and those below it: path, value, path, value, ...
local function records(index, hp, p)
	local out = {}
	local f, n = split(p)
	local v = redis.call("HGET", hp .. f, n)
	if v then
		out[#out + 1] = p
		out[#out + 1] = v
	end
	for _, folder in ipairs(folders(index, p)) do
		local kv = redis.call("HGETALL", hp .. folder)
		for i = 1, #kv, 2 do
			local full = folder .. "/" .. kv[i]
			if full ~= p then
				out[#out + 1] = full
				out[#out + 1] = kv[i + 1]
			end
		end
	end
	return out
end

local function drop(index, hp, p)
	del(index, hp, p)
	for _, folder in ipairs(folders(index, p)) do
		redis.call("DEL", hp .. folder)
		redis.call("ZREM", index, folder)
	end
end

for k = 1, #KEYS do
	local index, hp = KEYS[k], ARGV[3 + k]
	if op == "del" then
		drop(index, hp, src)
	else
		drop(index, hp, dst)
		local recs = records(index, hp, src)
		for i = 1, #recs, 2 do
			put(index, hp, dst .. string.sub(recs[i], #src + 1), recs[i + 1])
			if op == "move" then del(index, hp, recs[i]) end
		end
	end
end
return 0
`)

// subtree runs subtreeScript over kinds.
func (s *RedisStore) subtree(op, src, dst string, kinds []string) error {
	if _, _, err := split(src); err != nil {
		return err
	}
	if op != "del" {
		if _, _, err := split(dst); err != nil {
			return err
		}
	}
	keys := make([]string, len(kinds))
	args := []any{op, src, dst}
	for i, k := range kinds {
		keys[i] = s.indexKey(k)
		args = append(args, s.hashPrefix(k))
	}
	ctx, cancel := opContext()
	defer cancel()
	err := subtreeScript.Run(ctx, s.r.Client(), keys, args...).Err()
	if op == "del" {
		return fail("delete", src, err)
	}
	return fail(op, src+" to "+dst, err)
}

// Delete forgets path and everything below it.
func (s *RedisStore) Delete(path string) error { return s.subtree("del", path, "", allKinds) }

// Copy gives dst (and its subtree) the properties and kept times of src's,
// replacing whatever dst had.
func (s *RedisStore) Copy(src, dst string) error { return s.subtree("copy", src, dst, allKinds) }

// Move is Copy, then src's records are forgotten.
func (s *RedisStore) Move(src, dst string) error { return s.subtree("move", src, dst, allKinds) }

// CopyProps is Copy of the dead properties only, for a copy to another
// mount: there the upload itself set the kept times.
func (s *RedisStore) CopyProps(src, dst string) error {
	return s.subtree("copy", src, dst, propsKinds)
}

// anyScript answers 1 when a path or anything below it has a record.
// KEYS: the hash of the path's folder, the index. ARGV: the path's name,
// then below's base and prefix.
var anyScript = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call("ZSCORE", KEYS[2], ARGV[2]) then return 1 end
if #redis.call("ZRANGEBYLEX", KEYS[2], "[" .. ARGV[3], "(" .. ARGV[2] .. "0", "LIMIT", 0, 1) > 0 then return 1 end
return 0
`)

// AnyIn reports whether path or anything below it has properties, in one
// round trip, so that a listing without any can skip per-entry lookups.
func (s *RedisStore) AnyIn(path string) (bool, error) {
	folder, name, err := split(path)
	if err != nil {
		return false, err
	}
	base, prefix := below(path)
	ctx, cancel := opContext()
	defer cancel()
	n, err := anyScript.Run(ctx, s.r.Client(),
		[]string{s.hashKey(kindProps, folder), s.indexKey(kindProps)}, name, base, prefix).Int()
	if err != nil {
		return false, fail("any in", path, err)
	}
	return n == 1, nil
}

// SetModTime keeps t as the modification time of the file at path, whose
// size is size.
func (s *RedisStore) SetModTime(path string, t time.Time, size int64) error {
	return s.put("set time", kindTimes, path, encodeModTime(t, size))
}

// ModTimes returns the kept times of the files directly inside the folder
// dir, by name: one HGETALL for a whole listing.
func (s *RedisStore) ModTimes(dir string) (map[string]ModTime, error) {
	ctx, cancel := opContext()
	defer cancel()
	all, err := s.r.Client().HGetAll(ctx, s.hashKey(kindTimes, strings.TrimSuffix(dir, "/"))).Result()
	if err != nil {
		return nil, fail("times", dir, err)
	}
	out := make(map[string]ModTime, len(all))
	for name, v := range all {
		if mt, ok := decodeModTime([]byte(v)); ok {
			out[name] = mt
		}
	}
	return out, nil
}

// ModTimeAt returns the kept time of the file at path, if there is one.
func (s *RedisStore) ModTimeAt(path string) (ModTime, bool, error) {
	v, ok, err := s.hget("time", kindTimes, path)
	if err != nil || !ok {
		return ModTime{}, false, err
	}
	mt, ok := decodeModTime(v)
	return mt, ok, nil
}

// SetPatchedTime keeps t as the time a client set by PROPPATCH on the
// empty file at path (see Store.SetPatchedTime).
func (s *RedisStore) SetPatchedTime(path string, t time.Time) error {
	return s.put("set patched time", kindPatched, path, encodePatched(t))
}

// PatchedTime returns the time kept by SetPatchedTime for path, if any.
func (s *RedisStore) PatchedTime(path string) (time.Time, bool, error) {
	v, ok, err := s.hget("patched time", kindPatched, path)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	t, ok := decodePatched(v)
	return t, ok, nil
}

// ClearPatchedTime forgets the time kept for path: its content arrived.
func (s *RedisStore) ClearPatchedTime(path string) error {
	return s.put("clear patched time", kindPatched, path, nil)
}

// exportPage is how many folders Export reads from the index at a time.
const exportPage = 500

// Export calls fn for every record, folder by folder in the order of the
// index; fn may write to another store (not to s).
func (s *RedisStore) Export(fn func(Record) error) error {
	c := s.r.Client()
	for _, kind := range allKinds {
		from := "-"
		for {
			ctx, cancel := opContext()
			folders, err := c.ZRangeByLex(ctx, s.indexKey(kind),
				&redis.ZRangeBy{Min: from, Max: "+", Count: exportPage}).Result()
			cancel()
			if err != nil {
				return fail("export", kind, err)
			}
			for _, folder := range folders {
				ctx, cancel := opContext()
				all, err := c.HGetAll(ctx, s.hashKey(kind, folder)).Result()
				cancel()
				if err != nil {
					return fail("export", folder, err)
				}
				for name, v := range all {
					rec, err := decodeRecord(kind, folder+"/"+name, []byte(v))
					if err != nil {
						return err
					}
					if err := fn(rec); err != nil {
						return err
					}
				}
			}
			if len(folders) < exportPage {
				break
			}
			from = "(" + folders[len(folders)-1]
		}
	}
	return nil
}

// Import stores rec as it is, whatever the limits.
func (s *RedisStore) Import(rec Record) error {
	kind, v, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	return s.put("import", kind, rec.Path, v)
}
