// Package cluster is what several bridge instances behind one load balancer
// share: one Redis server (server.shared_state), reached through go-redis.
// Tokens, sessions, locks, dead properties, pending entries, throttling
// counters and listing invalidations all live under one key prefix there.
//
// Whatever an instance cannot reach Redis for fails with ErrUnavailable
// (the bridge answers 503): there is no silent fallback to the instance's
// own memory, which would let two instances disagree about a lock or spend
// a rotating refresh token twice.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"bridge/drivers"
)

// ErrUnavailable is drivers.ErrStateUnavailable: Redis did not answer.
var ErrUnavailable = drivers.ErrStateUnavailable

// DefaultPrefix namespaces keys when server.shared_prefix is unset.
const DefaultPrefix = "bridge:"

// Redis is a connection pool to the shared Redis and the key prefix of
// this bridge deployment. Safe for concurrent use.
type Redis struct {
	client *redis.Client
	prefix string
}

// Open connects to url ("redis://[:password@]host:port/db",
// "rediss://…" for TLS, "unix:///path/redis.sock") and checks that Redis
// answers.
func Open(ctx context.Context, url, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("shared_state: %w", err)
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	// Short timeouts: a request waits on Redis, and a Redis that is gone
	// must turn into a 503 soon, not into a hung client.
	opts.DialTimeout = time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.MaxRetries = 1
	r := &Redis{client: redis.NewClient(opts), prefix: prefix}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.client.Ping(pctx).Err(); err != nil {
		r.client.Close()
		return nil, Unavailable("connect", err)
	}
	return r, nil
}

// Client is the go-redis client, for the packages that keep their state
// in Redis.
func (r *Redis) Client() *redis.Client { return r.client }

// Prefix is the deployment's key prefix ("bridge:").
func (r *Redis) Prefix() string { return r.prefix }

// Key joins parts under the prefix: Key("locks", "v") = "bridge:locks:v".
func (r *Redis) Key(parts ...string) string { return r.prefix + strings.Join(parts, ":") }

// Close closes the pool.
func (r *Redis) Close() error { return r.client.Close() }

// Unavailable wraps a Redis failure so that it maps to 503; redis.Nil (no
// such key) is not a failure and is returned as is, as are a cancelled
// request's context errors.
func Unavailable(op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("shared state: %s: %w: %w", op, ErrUnavailable, err)
}

// LogTo sends go-redis's own messages (reconnects, failed dials) to log
// as warnings instead of plain lines on stderr among the JSON log. It sets
// go-redis's process-wide logger: the last call wins.
func LogTo(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log})
}

type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msg("redis: " + fmt.Sprintf(format, v...))
}
