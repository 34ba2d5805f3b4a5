package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"bridge/drivers"
)

// MountState is a mount's drivers.State in Redis: records under
// "<prefix>mount:<path>:rec:<name>", leases under "…:lease:<name>".
func (r *Redis) MountState(mountPath string) drivers.State {
	return &mountState{r: r, base: r.Key("mount", mountPath)}
}

type mountState struct {
	r    *Redis
	base string
}

func (s *mountState) Shared() bool { return true }

func (s *mountState) Load(ctx context.Context, name string) ([]byte, error) {
	b, err := s.r.client.Get(ctx, s.base+":rec:"+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, Unavailable("load "+name, err)
}

func (s *mountState) Save(ctx context.Context, name string, data []byte) error {
	// Detached: a rotated token must be saved even if the request that
	// caused the refresh has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return Unavailable("save "+name, s.r.client.Set(ctx, s.base+":rec:"+name, data, 0).Err())
}

func (s *mountState) Lease(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	return s.r.Lease(ctx, s.base+":lease:"+name, ttl)
}

// Lease takes the lease key for this process: SET NX with a random value
// and a TTL, kept alive every ttl/3 while held, so that a holder that dies
// (killed, cut from Redis) loses it within ttl. release deletes the key
// only while it still holds this process's value.
func (r *Redis) Lease(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error) {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	ok, err = r.client.SetNX(ctx, key, id, ttl).Result()
	if err != nil {
		return nil, false, Unavailable("lease", err)
	}
	if !ok {
		return nil, false, nil
	}
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				kctx, cancel := context.WithTimeout(context.Background(), ttl/3)
				extendScript.Run(kctx, r.client, []string{key}, id, ttl.Milliseconds())
				cancel()
			}
		}
	}()
	release = func() {
		once.Do(func() {
			close(stop)
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			releaseScript.Run(rctx, r.client, []string{key}, id)
		})
	}
	return release, true, nil
}

var (
	extendScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)
)
