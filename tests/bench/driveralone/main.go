// Command driveralone runs one provider driver without the bridge around
// it, against a fake, so that the benchmark can put each figure of a
// provider mount beside what the driver alone makes of the same provider:
// the floor the bridge's own work adds to.
//
//	driveralone -spec FILE prep -files N -get-size BYTES -get-seed S
//	driveralone -spec FILE link -path /bench-get.bin
//	driveralone -spec FILE put -path /bench-put/x.bin -size BYTES -seed S
//	driveralone -spec FILE list -path /bench-many -samples N [-gap 1.2s]
//
// FILE is JSON: {"driver": NAME, "options": {...}, "state_dir": DIR}. The
// state folder is the one the bridge's mount uses (state_dir/mounts/NAME),
// never at the same time: refresh tokens are single-use, and the bridge
// and this command take turns with them. Each command prints one JSON
// object on stdout. Every HTTP request the driver sends is counted, as the
// bridge's bridge_provider_calls_total counts them.
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/cloudreve"
	"bridge/drivers/disccloud"
	"bridge/drivers/disktop"
	"bridge/drivers/gokuai"
	"bridge/drivers/local"
	"bridge/drivers/terabox"
	"bridge/tests/bench/content"
)

// Spec is what the -spec file holds.
type Spec struct {
	Driver   string         `json:"driver"`
	Options  map[string]any `json:"options"`
	StateDir string         `json:"state_dir"`
}

var factories = map[string]drivers.Factory{
	local.Name:     local.New,
	disktop.Name:   disktop.New,
	cloudreve.Name: cloudreve.New,
	disccloud.Name: disccloud.New,
	gokuai.Name:    gokuai.New,
	terabox.Name:   terabox.New,
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "driveralone:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	top := flag.NewFlagSet("driveralone", flag.ContinueOnError)
	specFile := top.String("spec", "", "JSON file: driver, options, state_dir")
	if err := top.Parse(args); err != nil {
		return err
	}
	if *specFile == "" || top.NArg() == 0 {
		return errors.New("usage: driveralone -spec FILE prep|link|put|list [flags]")
	}
	raw, err := os.ReadFile(*specFile)
	if err != nil {
		return err
	}
	var spec Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", *specFile, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	a, err := open(ctx, spec)
	if err != nil {
		return err
	}
	defer a.close()

	cmd, rest := top.Arg(0), top.Args()[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	p := fs.String("path", "", "mount-relative path")
	files := fs.Int("files", 2000, "prep: files in /bench-many")
	getSize := fs.Int64("get-size", 200<<20, "prep: size of /bench-get.bin")
	seed := fs.Uint64("seed", 1, "put: content seed")
	getSeed := fs.Uint64("get-seed", 1, "prep: content seed of /bench-get.bin")
	size := fs.Int64("size", 1<<30, "put: bytes")
	samples := fs.Int("samples", 5, "list: timed listings")
	gap := fs.Duration("gap", 0, "list: idle time before each timed listing (the bridge's side waits for its cache to expire)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	var out any
	switch cmd {
	case "prep":
		out, err = a.prep(ctx, *files, *getSize, *getSeed)
	case "link":
		out, err = a.link(ctx, *p)
	case "put":
		out, err = a.put(ctx, *p, *size, *seed)
	case "list":
		out, err = a.list(ctx, *p, *samples, *gap)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", spec.Driver, cmd, err)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// alone is one driver with a counter of its HTTP requests.
type alone struct {
	d     drivers.Driver
	f     drivers.Features
	calls atomic.Int64
}

type counter struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func open(ctx context.Context, spec Spec) (*alone, error) {
	factory, ok := factories[spec.Driver]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q", spec.Driver)
	}
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return nil, err
	}
	// The same transport as the bridge's providerTransport.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	a := &alone{}
	d, err := factory(ctx, drivers.Config{
		MountPath: "/" + spec.Driver,
		StateDir:  spec.StateDir,
		Decode: func(v any) error {
			// Through TOML, as the bridge decodes [mounts.options].
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(spec.Options); err != nil {
				return err
			}
			_, err := toml.NewDecoder(&buf).Decode(v)
			return err
		},
		HTTPClient: &http.Client{Transport: counter{&a.calls, t}},
		Logger:     zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger(),
	})
	if err != nil {
		return nil, err
	}
	a.d, a.f = d, d.Features()
	return a, nil
}

func (a *alone) close() {
	if c, ok := a.d.(drivers.Closer); ok {
		c.Close()
	}
}

// resolve finds p by listing from the root, as a client knowing only the
// path must.
func (a *alone) resolve(ctx context.Context, p string) (drivers.Ref, error) {
	root, err := a.d.Root(ctx)
	if err != nil {
		return drivers.Ref{}, err
	}
	ref := drivers.Ref{Path: "/", Object: root}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if name == "" {
			continue
		}
		objs, err := a.d.List(ctx, ref)
		if err != nil {
			return drivers.Ref{}, fmt.Errorf("list %s: %w", ref.Path, err)
		}
		found := false
		for _, o := range objs {
			if o.Name == name {
				ref = drivers.Ref{Path: path.Join(ref.Path, name), Object: o}
				found = true
				break
			}
		}
		if !found {
			return drivers.Ref{}, fmt.Errorf("%s: %w", path.Join(ref.Path, name), drivers.ErrNotFound)
		}
	}
	return ref, nil
}

// mkdir makes name in parent, or finds it if it is there.
func (a *alone) mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Ref, error) {
	p := path.Join(parent.Path, name)
	o, err := a.d.Mkdir(ctx, parent, name)
	if errors.Is(err, drivers.ErrExist) {
		return a.resolve(ctx, p)
	}
	if err != nil {
		return drivers.Ref{}, fmt.Errorf("mkdir %s: %w", p, err)
	}
	return drivers.Ref{Path: p, Object: o}, nil
}

// upload is c as the bridge hands a finished temp file to Put, with the
// hashes the driver declares it needs (computed here, as the bridge
// computes them while a body arrives).
func (a *alone) upload(c content.Content) (drivers.Upload, error) {
	up := drivers.Upload{Body: c, Size: c.Size}
	var hs []io.Writer
	var m, s hash.Hash
	if a.f.UploadHashes.Has(drivers.HashMD5) {
		m = md5.New()
		hs = append(hs, m)
	}
	if a.f.UploadHashes.Has(drivers.HashSHA1) {
		s = sha1.New()
		hs = append(hs, s)
	}
	if len(hs) > 0 {
		if _, err := io.CopyBuffer(io.MultiWriter(hs...), c.Reader(), make([]byte, 1<<20)); err != nil {
			return up, err
		}
	}
	if m != nil {
		up.Hashes.MD5 = hex.EncodeToString(m.Sum(nil))
	}
	if s != nil {
		up.Hashes.SHA1 = hex.EncodeToString(s.Sum(nil))
	}
	return up, nil
}

// prep makes what the benchmark reads: /bench-many with files small
// files, /bench-empty, /bench-put and /bench-get.bin.
func (a *alone) prep(ctx context.Context, files int, getSize int64, getSeed uint64) (any, error) {
	root, err := a.resolve(ctx, "/")
	if err != nil {
		return nil, err
	}
	many, err := a.mkdir(ctx, root, "bench-many")
	if err != nil {
		return nil, err
	}
	for _, n := range []string{"bench-empty", "bench-put"} {
		if _, err := a.mkdir(ctx, root, n); err != nil {
			return nil, err
		}
	}
	have := map[string]bool{}
	objs, err := a.d.List(ctx, many)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		have[o.Name] = true
	}
	start := time.Now()
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				body := []byte("bench file " + name + "\n")
				m, s := md5.Sum(body), sha1.Sum(body)
				up := drivers.Upload{Body: bytes.NewReader(body), Size: int64(len(body)),
					Hashes: drivers.Hashes{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s[:])}}
				if _, err := a.d.Put(ctx, many, name, up); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("put %s/%s: %w", many.Path, name, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range files {
		if n := fmt.Sprintf("file-%05d.txt", i); !have[n] {
			names <- n
		}
	}
	close(names)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	seeded := time.Since(start)
	up, err := a.upload(content.New(getSeed, getSize))
	if err != nil {
		return nil, err
	}
	if _, err := a.d.Put(ctx, root, "bench-get.bin", up); err != nil {
		return nil, fmt.Errorf("put /bench-get.bin: %w", err)
	}
	return map[string]any{"files": files, "seed_seconds": seeded.Seconds(), "calls": a.calls.Load(),
		"lists_by_path": a.f.ListsByPath}, nil
}

// link answers the download link of p and the provider calls Link made.
func (a *alone) link(ctx context.Context, p string) (any, error) {
	ref, err := a.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	before := a.calls.Load()
	l, err := a.d.Link(ctx, ref)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": l.URL, "header": l.Header, "calls": a.calls.Load() - before, "size": ref.Size}, nil
}

// put uploads size bytes of seed as p, timed from the first hash to
// Put's answer, then removes it (untimed).
func (a *alone) put(ctx context.Context, p string, size int64, seed uint64) (any, error) {
	parent, err := a.resolve(ctx, path.Dir(p))
	if err != nil {
		return nil, err
	}
	c := content.New(seed, size)
	before, cpu0, t0 := a.calls.Load(), cpuSeconds(), time.Now()
	up, err := a.upload(c)
	if err != nil {
		return nil, err
	}
	o, err := a.d.Put(ctx, parent, path.Base(p), up)
	if err != nil {
		return nil, err
	}
	secs, cpu, calls := time.Since(t0).Seconds(), cpuSeconds()-cpu0, a.calls.Load()-before
	if o.Size != size {
		return nil, fmt.Errorf("put %s: the provider has %d bytes, want %d", p, o.Size, size)
	}
	if err := a.d.Remove(ctx, drivers.Ref{Path: p, Object: o}); err != nil {
		return nil, fmt.Errorf("remove %s: %w", p, err)
	}
	return map[string]any{"seconds": secs, "cpu_seconds": cpu, "calls": calls}, nil
}

// list times samples listings of the folder p (after one untimed one that
// warms the connection and the token): the provider's own listing calls
// as the driver makes them, given the folder's ID.
func (a *alone) list(ctx context.Context, p string, samples int, gap time.Duration) (any, error) {
	dir, err := a.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	objs, err := a.d.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	before := a.calls.Load()
	var secs []float64
	for range samples {
		time.Sleep(gap)
		t0 := time.Now()
		if _, err := a.d.List(ctx, dir); err != nil {
			return nil, err
		}
		secs = append(secs, time.Since(t0).Seconds())
	}
	return map[string]any{"seconds": secs, "calls": float64(a.calls.Load()-before) / float64(samples),
		"entries": len(objs)}, nil
}

// cpuSeconds is the user and system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
