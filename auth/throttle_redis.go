package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"

	"bridge/cluster"
)

// NewSharedThrottle makes a throttle whose counts and blocks live in Redis,
// so that wrong logins through any bridge instance count toward one limit
// and a block started by one instance holds on all. max <= 0 disables it.
// When Redis cannot be reached the throttle fails (503), it never falls
// back to counting in memory.
func NewSharedThrottle(r *cluster.Redis, max int, window, block time.Duration) *Throttle {
	return &Throttle{Max: max, Window: window, Block: block, now: time.Now,
		Counters: &redisCounters{r: r}}
}

// redisCounters are Counters in Redis. For each counted thing there is
// "<prefix>throttle:<kind>:<id>:fails", a count whose TTL is its window, and
// "…:block", present while it is blocked, with the block's end as its TTL.
// kind "addr" has the client address as id; kind "user" has a hash of the
// address and user name (keys stay short and free of odd bytes; passwords
// are never part of a key). Redis's clock decides, so instances whose
// clocks differ still agree.
type redisCounters struct {
	r *cluster.Redis
}

// failScript counts one failure on each (fails, block) key pair of KEYS
// against the limit ARGV[2+i] (ARGV[1] window ms, ARGV[2] block ms). It
// runs atomically, so a counter never exists without its TTL, even if the
// bridge dies mid-call. A count going over its limit becomes a block and
// starts afresh, as in memory.
var failScript = redis.NewScript(`
local window, block = ARGV[1], ARGV[2]
for i = 1, #KEYS / 2 do
	local fails, blocked = KEYS[2*i-1], KEYS[2*i]
	local n = redis.call('INCR', fails)
	if n == 1 or redis.call('PTTL', fails) < 0 then
		redis.call('PEXPIRE', fails, window)
	end
	if n > tonumber(ARGV[2+i]) then
		redis.call('SET', blocked, '1', 'PX', block)
		redis.call('DEL', fails)
	end
end
return 0
`)

func (c *redisCounters) addrKey(addr, suffix string) string {
	return c.r.Key("throttle", "addr", addr, suffix)
}

func (c *redisCounters) userKey(addr, user, suffix string) string {
	sum := sha256.Sum256([]byte(accountKey(addr, user)))
	return c.r.Key("throttle", "user", hex.EncodeToString(sum[:16]), suffix)
}

func (c *redisCounters) Blocked(ctx context.Context, _ time.Time, addr, user string, hasUser bool) (time.Duration, bool, error) {
	pipe := c.r.Client().Pipeline()
	addrWait := pipe.PTTL(ctx, c.addrKey(addr, "block"))
	var userWait *redis.DurationCmd
	if hasUser {
		userWait = pipe.PTTL(ctx, c.userKey(addr, user, "block"))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, false, cluster.Unavailable("throttle check", err)
	}
	// PTTL is -2 for a missing key; a block always has a TTL.
	if w := addrWait.Val(); w > 0 {
		return w, true, nil
	}
	if userWait != nil && userWait.Val() > 0 {
		return userWait.Val(), false, nil
	}
	return 0, false, nil
}

func (c *redisCounters) Failed(ctx context.Context, _ time.Time, addr, user string, l Limits) error {
	// Detached: a guesser hanging up right after its wrong password must
	// still be counted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys := []string{
		c.userKey(addr, user, "fails"), c.userKey(addr, user, "block"),
		c.addrKey(addr, "fails"), c.addrKey(addr, "block"),
	}
	err := failScript.Run(ctx, c.r.Client(), keys,
		max(l.Window.Milliseconds(), 1), max(l.Block.Milliseconds(), 1), l.Account, l.Addr).Err()
	return cluster.Unavailable("throttle count", err)
}
