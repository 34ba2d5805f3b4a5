// Command compare is the bridge's speed benchmark (issue 14). Every server
// is a process of its own: the bridge built from this tree, `rclone serve
// webdav`, a plain golang.org/x/net/webdav.Dir server (tests/bench/plaindav)
// and each provider's fake (tests/fakeprovider). The servers of one measure
// run one after the other, their order alternating, and the measures'
// order rotates over the repetitions, so a burst of outside load lands on
// one side of one pair rather than on one server. The table gives each
// side's median and the median of the per-repetition ratios.
//
// The bridge is started afresh for every measure of every repetition, so
// its peak RSS (VmHWM) belongs to that measure; its CPU time comes from
// /proc/PID/stat and its provider calls from its /metrics.
//
// Run it through tests/bench/compare.sh, which builds the binaries and
// installs rclone, wrk and curl:
//
//	bash tests/bench/compare.sh -quick            # smoke test, about a minute
//	bash tests/bench/compare.sh -big -out bench.md  # the README's table
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// opts are the command line.
type opts struct {
	reps                   int
	localPut, get, put     int64
	bigSize                int64
	files, many, samples   int
	wrkSecs                int
	big, keep              bool
	providers              []string
	out                    string
	bridgeBin, fakeBin     string
	plainBin, aloneBin     string
	workParent             string
	quick                  bool
	putDirSize             int64
	skipLocal, skipProvide bool
}

const allProviders = "disktop,cloudreve,gokuai,terabox,disccloud"

func parseFlags() opts {
	var o opts
	var providers string
	flag.IntVar(&o.reps, "reps", 5, "repetitions (at least 5 for the README's table)")
	flag.Int64Var(&o.localPut, "local-put", 1<<30, "bytes of the local PUT")
	flag.Int64Var(&o.get, "get", 200<<20, "bytes of the GET through each provider mount")
	flag.Int64Var(&o.put, "put", 1<<30, "bytes of the PUT through each provider mount")
	flag.Int64Var(&o.putDirSize, "put-dir-size", 1<<20, "bytes of each PUT into the big and the empty folder")
	flag.Int64Var(&o.bigSize, "big-size", 5<<30, "bytes of the -big file")
	flag.IntVar(&o.files, "files", 2000, "files in each provider's folder (cold PROPFIND, PUT into a full folder)")
	flag.IntVar(&o.many, "many", 10000, "files in the local folder (warm PROPFIND, Depth 0 load)")
	flag.IntVar(&o.samples, "samples", 5, "timed requests per measure where one request is short (PROPFIND, small PUT)")
	flag.IntVar(&o.wrkSecs, "wrk", 5, "seconds of PROPFIND Depth 0 load per server")
	flag.BoolVar(&o.big, "big", false, "also send a -big-size file through every provider mount and check it byte for byte (slow)")
	flag.BoolVar(&o.quick, "quick", false, "one repetition with small sizes, to smoke-test the benchmark (flags given too still win)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (servers' logs, data) after the run")
	flag.BoolVar(&o.skipLocal, "no-local", false, "skip the local-mount measures")
	flag.BoolVar(&o.skipProvide, "no-providers", false, "skip the provider measures")
	flag.StringVar(&providers, "providers", allProviders, "provider mounts to measure")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.StringVar(&o.bridgeBin, "bridge", "", "bridge binary (required)")
	flag.StringVar(&o.fakeBin, "fakeprovider", "", "tests/fakeprovider binary (required)")
	flag.StringVar(&o.plainBin, "plaindav", "", "tests/bench/plaindav binary (required)")
	flag.StringVar(&o.aloneBin, "driveralone", "", "tests/bench/driveralone binary (required)")
	flag.StringVar(&o.workParent, "work", "", "folder for the work folder (default: the system temp folder)")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"reps":      func() { o.reps = 1 },
			"local-put": func() { o.localPut = 64 << 20 },
			"get":       func() { o.get = 32 << 20 },
			"put":       func() { o.put = 32 << 20 },
			"files":     func() { o.files = 200 },
			"many":      func() { o.many = 1000 },
			"samples":   func() { o.samples = 2 },
			"wrk":       func() { o.wrkSecs = 2 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	for _, p := range strings.Split(providers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.providers = append(o.providers, p)
		}
	}
	if o.skipProvide {
		o.providers = nil
	}
	for name, v := range map[string]string{"bridge": o.bridgeBin, "fakeprovider": o.fakeBin,
		"plaindav": o.plainBin, "driveralone": o.aloneBin} {
		if v == "" {
			fail(fmt.Errorf("-%s is required (run tests/bench/compare.sh)", name))
		}
	}
	if o.reps < 1 {
		fail(errors.New("-reps must be at least 1"))
	}
	return o
}

// env is one run: its folders, binaries, fakes and table.
type env struct {
	o    opts
	bins struct{ bridge, fake, plain, alone string }
	// work holds everything; logs the servers' output; state the
	// bridge's state_dir (shared by every bridge and by driveralone);
	// temp its temp_dir; localDir the local mount's root (many/, put/),
	// also served by rclone; plainDir webdav.Dir's root.
	work, logs, state, temp, localDir, plainDir string
	passHash                                    string
	fakes                                       map[string]*fake
	rows                                        []*row
	byKey                                       map[string]*row
	seed                                        uint64
}

func main() {
	o := parseFlags()
	e := &env{o: o, fakes: map[string]*fake{}, byKey: map[string]*row{}, seed: 1000}
	e.bins.bridge, e.bins.fake, e.bins.plain, e.bins.alone = abs(o.bridgeBin), abs(o.fakeBin), abs(o.plainBin), abs(o.aloneBin)
	var err error
	e.work, err = os.MkdirTemp(o.workParent, "bridge-bench-*")
	fail(err)
	cleanup := func() {
		for _, f := range e.fakes {
			f.proc.stop()
		}
		if o.keep {
			fmt.Fprintln(os.Stderr, "compare: kept", e.work)
		} else {
			os.RemoveAll(e.work)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "compare: interrupted; stopping the servers")
		stopAll()
		cleanup()
		os.Exit(130)
	}()
	header := machineHeader(o)
	start := time.Now()
	err = e.run()
	if err == nil {
		e.fillPeers()
		table := markdown(header, e.rows) + fmt.Sprintf("\nThe run took %s.\n", time.Since(start).Round(time.Second))
		fmt.Print("\n" + table)
		if o.out != "" {
			err = os.WriteFile(o.out, []byte(table), 0o644)
		}
	}
	cleanup()
	fail(err)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// live are the processes running now, for an interrupt to stop.
var (
	liveMu sync.Mutex
	live   = map[*proc]bool{}
)

func track(p *proc) *proc {
	liveMu.Lock()
	live[p] = true
	liveMu.Unlock()
	go func() {
		<-p.done
		liveMu.Lock()
		delete(live, p)
		liveMu.Unlock()
	}()
	return p
}

func stopAll() {
	liveMu.Lock()
	var ps []*proc
	for p := range live {
		ps = append(ps, p)
	}
	liveMu.Unlock()
	for _, p := range ps {
		p.cmd.Process.Kill()
	}
}

// machineHeader is the line saying when and on what the run was made.
func machineHeader(o opts) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	nproc := strconv.Itoa(runtime.NumCPU())
	if out, err := exec.Command("nproc").Output(); err == nil {
		nproc = strings.TrimSpace(string(out))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	rclone := "rclone ?"
	if out, err := exec.Command("rclone", "version").Output(); err == nil {
		rclone, _, _ = strings.Cut(string(out), "\n")
	}
	commit := "an unknown commit"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = "commit " + strings.TrimSpace(string(out))
		// Read-only: no index refresh is written.
		st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
		st.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
		if out, err := st.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			commit += " with uncommitted changes"
		}
	}
	loadavg := strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " ")
	mode := fmt.Sprintf("%d repetitions", o.reps)
	if o.quick {
		mode += ", -quick sizes (not comparable with a full run)"
	}
	if o.big {
		mode += fmt.Sprintf(", -big %s", size(o.bigSize))
	}
	return fmt.Sprintf("Measured %s at %s on `nproc` %s, %s, Linux %s (load average at start %s; %s; %s). "+
		"Each server is a process of its own; the two sides of a measure run back to back, in alternating order, and the "+
		"measures' order rotates between repetitions. Figures are medians; ratio is the median of the per-repetition "+
		"ratios bridge ÷ peer. calls: provider HTTP requests per request (the bridge's `bridge_provider_calls_total`); "+
		"RSS: the server process's peak (VmHWM), the bridge restarted for every measure.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit, nproc, cpu, strings.TrimSpace(string(kernel)), loadavg, rclone, mode)
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// nextSeed gives every upload content of its own, so no provider skips
// one by deduplication.
func (e *env) nextSeed() uint64 {
	e.seed++
	return e.seed
}

// addRow appends a row to the table.
func (e *env) addRow(r *row) *row {
	r.b, r.p = make([]*sample, e.o.reps), make([]*sample, e.o.reps)
	e.rows = append(e.rows, r)
	e.byKey[r.key] = r
	return r
}

// rec records one side's figure for key in repetition rep.
func (e *env) rec(key string, bridgeSide bool, rep int, s sample) {
	r := e.byKey[key]
	if r == nil {
		panic("no row " + key)
	}
	side := "peer"
	if bridgeSide {
		r.b[rep] = &s
		side = "bridge"
	} else {
		r.p[rep] = &s
	}
	if s.text == "" {
		logf("    %s, %s: %s", key, side, cell(s.v, r.unit, s.calls, map[bool]float64{true: s.rss, false: math.NaN()}[s.rss > 0]))
	}
}

// failed notes a failure of one side of key's measure.
func (e *env) failed(key string, err error) {
	logf("FAILED %s: %v", key, err)
	if r := e.byKey[key]; r != nil {
		r.errs = append(r.errs, err.Error())
	}
}

func (e *env) run() error {
	o := e.o
	e.logs, e.state, e.temp = filepath.Join(e.work, "logs"), filepath.Join(e.work, "state"), filepath.Join(e.work, "tmp")
	e.localDir, e.plainDir = filepath.Join(e.work, "local"), filepath.Join(e.work, "plain")
	for _, d := range []string{e.logs, e.state, e.temp, filepath.Join(e.localDir, "many"), filepath.Join(e.localDir, "put"), e.plainDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	e.passHash = string(hash)
	if out, err := exec.Command("df", "-h", e.work).Output(); err == nil {
		logf("work folder %s:\n%s", e.work, bytes.TrimSpace(out))
	}
	e.defineRows()

	var tasks []task
	if !o.skipLocal {
		logf("setup: %d files in the local folder", o.many)
		for i := range o.many {
			if err := os.WriteFile(filepath.Join(e.localDir, "many", fmt.Sprintf("photo-%05d.jpg", i)), []byte("x"), 0o644); err != nil {
				return err
			}
		}
		tasks = append(tasks, e.localTasks()...)
	}
	for _, name := range o.providers {
		logf("setup: %s fake, %d files, %s to GET", name, o.files, size(o.get))
		f, err := e.startFake(name)
		if err == nil {
			e.fakes[name] = f
			var prep struct {
				Seconds float64 `json:"seed_seconds"`
			}
			err = e.driverAlone(f, &prep, "prep", "-files", strconv.Itoa(o.files),
				"-get-size", strconv.FormatInt(o.get, 10), "-get-seed", strconv.FormatUint(getSeed(name), 10))
		}
		if err != nil {
			e.failed("get/"+name, fmt.Errorf("setup: %w", err))
			continue
		}
		tasks = append(tasks, e.providerTasks(f)...)
	}

	// Interleave: each task runs both its sides back to back; the side
	// that goes first alternates, and the tasks' order rotates.
	step := max(1, len(tasks)/o.reps)
	for rep := range o.reps {
		logf("repetition %d of %d", rep+1, o.reps)
		for i := range tasks {
			k := (i + rep*step) % len(tasks)
			t := tasks[k]
			bridgeFirst := (rep+k)%2 == 0
			logf("  %s (bridge %s)", t.name, map[bool]string{true: "first", false: "second"}[bridgeFirst])
			t.run(rep, bridgeFirst)
		}
	}
	if o.big {
		for _, name := range o.providers {
			if f := e.fakes[name]; f != nil {
				e.bigFile(f)
			}
		}
	}
	return nil
}

// getSeed is the content seed of a provider's /bench-get.bin.
func getSeed(provider string) uint64 {
	var h uint64 = 7
	for _, c := range provider {
		h = h*31 + uint64(c)
	}
	return h
}
