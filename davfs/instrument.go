package davfs

import (
	"context"
	"sync"
	"sync/atomic"

	"bridge/drivers"
)

// Call names, one per driver method, used as counter keys.
const (
	OpRoot   = "root"
	OpList   = "list"
	OpLink   = "link"
	OpOpen   = "open"
	OpMkdir  = "mkdir"
	OpRename = "rename"
	OpMove   = "move"
	OpCopy   = "copy"
	OpRemove = "remove"
	OpPut    = "put"
	OpQuota  = "quota"
	OpImport = "import" // drivers.URLImporter
	OpHash   = "hash"   // drivers.Hasher
	// OpDownload is the bridge's own GET of a download link.
	OpDownload = "download"
)

// Metrics learns what the bridge does, for monitoring; nil means none.
type Metrics interface {
	ProviderCall(mount, op string, err error)
	CacheLookup(hit bool)
	UploadInFlight(delta int)
}

// calls counts driver calls by operation: the steadiest measure of what a
// WebDAV request costs, asserted in tests.
type calls struct {
	mu     sync.Mutex
	counts map[string]*atomic.Int64
}

func (c *calls) inc(op string) {
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[string]*atomic.Int64{}
	}
	n, ok := c.counts[op]
	if !ok {
		n = new(atomic.Int64)
		c.counts[op] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

func (c *calls) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v.Load()
	}
	return out
}

// instrumented wraps a driver and counts each call.
type instrumented struct {
	d       drivers.Driver
	mount   string
	calls   *calls
	metrics Metrics
}

// callKey tags a context with the mount and driver operation it serves.
type callKey struct{}

type callInfo struct{ mount, op string }

func withCall(ctx context.Context, mount, op string) context.Context {
	return context.WithValue(ctx, callKey{}, callInfo{mount, op})
}

// CallFrom tells which mount and operation (a driver method, or
// "download" for the bridge's own reads of links) a provider HTTP request
// made under ctx serves; both are empty when unknown. The bridge counts
// provider requests by them, so its metrics match what the provider sees:
// every page, part and retry.
func CallFrom(ctx context.Context) (mount, op string) {
	c, _ := ctx.Value(callKey{}).(callInfo)
	return c.mount, c.op
}

func (i *instrumented) done(op string, err error) {
	i.calls.inc(op)
	if i.metrics != nil {
		i.metrics.ProviderCall(i.mount, op, err)
	}
}

func (i *instrumented) Features() drivers.Features { return i.d.Features() }

func (i *instrumented) Root(ctx context.Context) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpRoot)
	o, err := i.d.Root(ctx)
	i.done(OpRoot, err)
	return o, err
}

func (i *instrumented) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpList)
	o, err := i.d.List(ctx, dir)
	i.done(OpList, err)
	return o, err
}

func (i *instrumented) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	ctx = withCall(ctx, i.mount, OpLink)
	l, err := i.d.Link(ctx, file)
	i.done(OpLink, err)
	return l, err
}

func (i *instrumented) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpMkdir)
	o, err := i.d.Mkdir(ctx, parent, name)
	i.done(OpMkdir, err)
	return o, err
}

func (i *instrumented) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpRename)
	o, err := i.d.Rename(ctx, obj, newName)
	i.done(OpRename, err)
	return o, err
}

func (i *instrumented) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpMove)
	o, err := i.d.Move(ctx, obj, dstParent, newName)
	i.done(OpMove, err)
	return o, err
}

func (i *instrumented) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpCopy)
	o, err := i.d.Copy(ctx, obj, dstParent, newName)
	i.done(OpCopy, err)
	return o, err
}

func (i *instrumented) Remove(ctx context.Context, obj drivers.Ref) error {
	ctx = withCall(ctx, i.mount, OpRemove)
	err := i.d.Remove(ctx, obj)
	i.done(OpRemove, err)
	return err
}

func (i *instrumented) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	ctx = withCall(ctx, i.mount, OpPut)
	if i.metrics != nil {
		i.metrics.UploadInFlight(1)
		defer i.metrics.UploadInFlight(-1)
	}
	o, err := i.d.Put(ctx, parent, name, up)
	i.done(OpPut, err)
	return o, err
}

func (i *instrumented) Quota(ctx context.Context) (drivers.Quota, error) {
	ctx = withCall(ctx, i.mount, OpQuota)
	q, err := i.d.Quota(ctx)
	i.done(OpQuota, err)
	return q, err
}

// open calls the driver's Opener, counted.
func (i *instrumented) open(ctx context.Context, file drivers.Ref, off, n int64) (rc interface {
	Read([]byte) (int, error)
	Close() error
}, err error) {
	ctx = withCall(ctx, i.mount, OpOpen)
	op, ok := i.d.(drivers.Opener)
	if !ok {
		return nil, drivers.ErrNotSupported
	}
	rc, err = op.Open(ctx, file, off, n)
	i.done(OpOpen, err)
	return rc, err
}
