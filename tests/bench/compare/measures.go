package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bridge/tests/bench/content"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// task is one measure: run measures both its sides in repetition rep.
type task struct {
	name string
	run  func(rep int, bridgeFirst bool)
}

func pair(bridgeFirst bool, bridgeSide, peerSide func()) {
	if bridgeFirst {
		bridgeSide()
		peerSide()
	} else {
		peerSide()
		bridgeSide()
	}
}

var titles = map[string]string{"disktop": "Disk.Top", "cloudreve": "Cloudreve", "gokuai": "Gokuai",
	"terabox": "TeraBox", "disccloud": "DiscCloud"}

func title(p string) string {
	if t, ok := titles[p]; ok {
		return t
	}
	return p
}

// defineRows lays out the table, grouped by measure as the is.
func (e *env) defineRows() {
	o := e.o
	if !o.skipLocal {
		e.addRow(&row{key: "local-put", measure: fmt.Sprintf("PUT %s, local mount vs a plain `x/net/webdav.Dir` server", size(o.localPut)),
			unit: "MiB/s", higher: true, goal: "≥ 0.9×", check: ratioAtLeast(0.9)})
		e.addRow(&row{key: "local-put-cpu", measure: "CPU-seconds per GiB of that PUT, server process", unit: "CPU-s/GiB", goal: "–"})
		e.addRow(&row{key: "local-put-disk", measure: fmt.Sprintf("PUT %s, local mount, until the file is on disk", size(o.localPut)),
			unit: "MiB/s", higher: true, goal: "–", peer: "webdav.Dir's PUT, then an fsync of the file: the bridge syncs before it answers, webdav.Dir never does"})
	}
	each := func(key, format string, r row) {
		for _, p := range o.providers {
			r := r
			r.key, r.measure = key+"/"+p, strings.ReplaceAll(format, "PROVIDER", title(p))
			e.addRow(&r)
		}
	}
	each("get", fmt.Sprintf("GET %s through a PROVIDER mount vs the same link fetched directly (median of %d)", size(o.get), getsPerSide),
		row{unit: "MiB/s", higher: true, goal: "≥ 0.9×", check: ratioAtLeast(0.9)})
	each("get-cpu", "CPU-seconds per GiB of that GET, PROVIDER", row{unit: "CPU-s/GiB", goal: "–",
		peer: "the fake serving the link"})
	each("put", fmt.Sprintf("PUT %s through a PROVIDER mount vs the driver alone", size(o.put)),
		row{unit: "MiB/s", higher: true, goal: "– (none set)"})
	each("put-cpu", "CPU-seconds per GiB of that PUT, PROVIDER", row{unit: "CPU-s/GiB", goal: "–",
		peer: "the driver alone's process, hashing included"})
	each("put-rss", fmt.Sprintf("peak RSS, PUT %s through a PROVIDER mount", size(o.put)),
		row{unit: "MiB", goal: "≤ 32 MiB, flat in file size", check: bridgeAtMost(32), peer: "the local mount's PUT"})
	each("putdir", fmt.Sprintf("PUT %s into a %d-file folder vs into an empty one, PROVIDER, folder listed", size(o.putDirSize), o.files),
		row{unit: "ms", goal: "flat in folder size (≤ 1.2×, no more calls)", check: flat})
	each("cold", fmt.Sprintf("PROPFIND Depth 1, %d files, cold, PROVIDER vs the driver's own listing call(s)", o.files),
		row{unit: "ms", goal: "≤ 1.2×", check: ratioAtMost(1.2)})
	if !o.skipLocal {
		e.addRow(&row{key: "warm", measure: fmt.Sprintf("PROPFIND Depth 1, %d files, warm, local mount vs `rclone serve webdav`", o.many),
			unit: "ms", goal: "≤ 0.10×", check: ratioAtMost(0.10)})
		e.addRow(&row{key: "depth0", measure: "PROPFIND Depth 0, 32 connections, local mount vs rclone", unit: "req/s",
			higher: true, goal: "≥ 3×", check: ratioAtLeast(3)})
	}
	if o.big {
		each("big", fmt.Sprintf("%s file through a PROVIDER mount: PUT, its size in PROPFIND, GET and ranges past 4 GiB, byte for byte", size(o.bigSize)),
			row{goal: "all equal; RSS ≤ 32 MiB", check: textOK, peer: fmt.Sprintf("the %s PUT", size(o.put))})
	}
}

// fillPeers completes the rows whose peer is another row's figure.
func (e *env) fillPeers() {
	local := e.byKey["local-put"]
	for _, p := range e.o.providers {
		if r := e.byKey["put-rss/"+p]; r != nil && local != nil {
			for i, s := range local.b {
				if s != nil && s.rss > 0 {
					r.p[i] = &sample{v: s.rss, calls: math.NaN()}
				}
			}
		}
		if r := e.byKey["big/"+p]; r != nil && r.b[0] != nil {
			if st := e.byKey["put-rss/"+p].stats(); !math.IsNaN(st.b) {
				r.p[0] = &sample{text: fmt.Sprintf("RSS %.0f MiB", st.b), calls: math.NaN()}
			}
		}
	}
}

func bg(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func mibPerSec(n int64, d time.Duration) float64 { return float64(n) / mib / d.Seconds() }

func perGiB(cpu float64, n int64) float64 { return cpu / (float64(n) / gib) }

func (e *env) localTasks() []task {
	return []task{
		{"local PUT vs webdav.Dir", func(rep int, bf bool) {
			seed := e.nextSeed()
			pair(bf, func() { e.localPut(rep, true, seed) }, func() { e.localPut(rep, false, seed) })
		}},
		{"warm PROPFIND vs rclone", func(rep int, bf bool) {
			pair(bf, func() { e.warm(rep, true) }, func() { e.warm(rep, false) })
		}},
		{"PROPFIND Depth 0 load vs rclone", func(rep int, bf bool) {
			pair(bf, func() { e.depth0(rep, true) }, func() { e.depth0(rep, false) })
		}},
	}
}

// localPut PUTs the same content through the bridge's local mount or
// through webdav.Dir; each writes to a folder of its own, removed after.
func (e *env) localPut(rep int, bridgeSide bool, seed uint64) {
	c := content.New(seed, e.o.localPut)
	var p *proc
	var url, file string
	if bridgeSide {
		b, err := e.startBridge("", e.localMount())
		if err != nil {
			e.failed("local-put", err)
			return
		}
		p, url, file = b.proc, b.base+"/local/put/up.bin", filepath.Join(e.localDir, "put", "up.bin")
	} else {
		pp, base, err := e.startPlain(e.plainDir)
		if err != nil {
			e.failed("local-put", err)
			return
		}
		p, url, file = pp, base+"/up.bin", filepath.Join(e.plainDir, "up.bin")
	}
	defer func() {
		p.stop()
		os.Remove(file)
		syscall.Sync() // the next measure does not pay for this one's writes
	}()
	ctx, cancel := bg(30 * time.Minute)
	defer cancel()
	cpu0 := p.cpu()
	d, err := put(ctx, url, c)
	cpu := p.cpu() - cpu0
	if err == nil {
		if fi, serr := os.Stat(file); serr != nil || fi.Size() != c.Size {
			err = fmt.Errorf("after the PUT, %s: %v", file, serr)
		}
	}
	if err != nil {
		e.failed("local-put", err)
		return
	}
	e.rec("local-put", bridgeSide, rep, sample{v: mibPerSec(c.Size, d), calls: math.NaN(), rss: p.peakRSS()})
	onDisk := d // the bridge's answer comes after its fsync
	if !bridgeSide {
		t0 := time.Now()
		if err := fsyncFile(file); err != nil {
			e.failed("local-put", err)
			return
		}
		onDisk += time.Since(t0)
	}
	e.rec("local-put-disk", bridgeSide, rep, figure(mibPerSec(c.Size, onDisk)))
	e.rec("local-put-cpu", bridgeSide, rep, figure(perGiB(cpu, c.Size)))
}

// localServer starts the bridge's local mount, or rclone over the same
// folder, and gives the URL of its many/ folder.
func (e *env) localServer(bridgeSide bool) (*proc, string, error) {
	if bridgeSide {
		b, err := e.startBridge("", e.localMount())
		if err != nil {
			return nil, "", err
		}
		return b.proc, b.base + "/local/many/", nil
	}
	p, base, err := e.startRclone(e.localDir)
	if err != nil {
		return nil, "", err
	}
	return p, base + "/many/", nil
}

func (e *env) warm(rep int, bridgeSide bool) {
	p, url, err := e.localServer(bridgeSide)
	if err != nil {
		e.failed("warm", err)
		return
	}
	defer p.stop()
	if _, err := propfindEntries(url, e.o.many+1); err != nil { // now it is warm
		e.failed("warm", err)
		return
	}
	var ms []float64
	for range max(e.o.samples, 3) {
		d, err := propfindEntries(url, e.o.many+1)
		if err != nil {
			e.failed("warm", err)
			return
		}
		ms = append(ms, d.Seconds()*1000)
	}
	e.rec("warm", bridgeSide, rep, sample{v: median(ms), calls: math.NaN(), rss: p.peakRSS()})
}

func (e *env) depth0(rep int, bridgeSide bool) {
	p, url, err := e.localServer(bridgeSide)
	if err != nil {
		e.failed("depth0", err)
		return
	}
	defer p.stop()
	if _, _, err := propfind(url, "0"); err != nil {
		e.failed("depth0", err)
		return
	}
	rps, err := depth0Load(e.work, url, e.o.wrkSecs)
	if err != nil {
		e.failed("depth0", err)
		return
	}
	e.rec("depth0", bridgeSide, rep, sample{v: rps, calls: math.NaN(), rss: p.peakRSS()})
}

func (e *env) providerTasks(f *fake) []task {
	return []task{
		{f.name + " GET vs direct", func(rep int, bf bool) {
			pair(bf, func() { e.getBridge(f, rep) }, func() { e.getDirect(f, rep) })
		}},
		{f.name + " PUT vs driver alone", func(rep int, bf bool) {
			pair(bf, func() { e.putBridge(f, rep) }, func() { e.putAlone(f, rep) })
		}},
		{f.name + " PUT into full vs empty folder", func(rep int, bf bool) { e.putDir(f, rep, bf) }},
		{f.name + " cold PROPFIND vs driver listing", func(rep int, bf bool) {
			pair(bf, func() { e.coldBridge(f, rep) }, func() { e.coldAlone(f, rep) })
		}},
	}
}

func (f *fake) mountPath() string { return "/" + f.name }

func (e *env) getBridge(f *fake, rep int) {
	key := "get/" + f.name
	b, err := e.startBridge("", f.mount())
	if err != nil {
		e.failed(key, err)
		return
	}
	defer b.stop()
	url := b.base + f.mountPath() + "/bench-get.bin"
	// The path resolved (untimed), so calls count the GET alone.
	if n, err := propSize(url); err != nil || n != e.o.get {
		e.failed(key, fmt.Errorf("PROPFIND %s: size %d, %v", url, n, err))
		return
	}
	c0, err := b.calls(f.mountPath())
	cpu0 := b.cpu()
	var speeds []float64
	for range getsPerSide {
		if err != nil {
			break
		}
		var speed float64
		speed, err = curlGet(url, nil, e.o.get)
		speeds = append(speeds, speed)
	}
	cpu := b.cpu() - cpu0
	c1, cerr := b.calls(f.mountPath())
	if err == nil {
		err = cerr
	}
	if err != nil {
		e.failed(key, err)
		return
	}
	e.rec(key, true, rep, sample{v: median(speeds), calls: (c1 - c0) / getsPerSide, rss: b.peakRSS()})
	e.rec("get-cpu/"+f.name, true, rep, figure(perGiB(cpu, getsPerSide*e.o.get)))
}

// getsPerSide is how many GETs make one side's figure (their median): a
// 200 MiB GET lasts a fraction of a second, too short to stand alone.
const getsPerSide = 3

func (e *env) getDirect(f *fake, rep int) {
	key := "get/" + f.name
	var l struct {
		URL    string      `json:"url"`
		Header http.Header `json:"header"`
		Calls  float64     `json:"calls"`
	}
	if err := e.driverAlone(f, &l, "link", "-path", "/bench-get.bin"); err != nil {
		e.failed(key, err)
		return
	}
	if l.Header == nil {
		l.Header = http.Header{} // and so no bridge credentials either
	}
	cpu0 := f.proc.cpu()
	var speeds []float64
	for range getsPerSide {
		speed, err := curlGet(l.URL, l.Header, e.o.get)
		if err != nil {
			e.failed(key, err)
			return
		}
		speeds = append(speeds, speed)
	}
	cpu := f.proc.cpu() - cpu0
	// Link once, then one download per GET, as the bridge reuses a link.
	e.rec(key, false, rep, sample{v: median(speeds), calls: l.Calls/getsPerSide + 1})
	e.rec("get-cpu/"+f.name, false, rep, figure(perGiB(cpu, getsPerSide*e.o.get)))
}

func (e *env) putBridge(f *fake, rep int) {
	key := "put/" + f.name
	b, err := e.startBridge("", f.mount())
	if err != nil {
		e.failed(key, err)
		return
	}
	defer b.stop()
	dir := b.base + f.mountPath() + "/bench-put/"
	if _, _, err := propfind(dir, "1"); err != nil { // the parent listed, untimed
		e.failed(key, err)
		return
	}
	url := dir + fmt.Sprintf("bridge-%d.bin", rep)
	c := content.New(e.nextSeed(), e.o.put)
	ctx, cancel := bg(30 * time.Minute)
	defer cancel()
	c0, err := b.calls(f.mountPath())
	cpu0 := b.cpu()
	var d time.Duration
	if err == nil {
		d, err = put(ctx, url, c)
	}
	cpu := b.cpu() - cpu0
	c1, cerr := b.calls(f.mountPath())
	if err == nil {
		err = cerr
	}
	if err == nil {
		var n int64
		if n, err = propSize(url); err == nil && n != c.Size {
			err = fmt.Errorf("after the PUT, PROPFIND %s says %d bytes, want %d", url, n, c.Size)
		}
	}
	rss := b.peakRSS()
	if derr := del(url); err == nil {
		err = derr
	}
	if err != nil {
		e.failed(key, err)
		return
	}
	e.rec(key, true, rep, sample{v: mibPerSec(c.Size, d), calls: c1 - c0, rss: rss})
	e.rec("put-cpu/"+f.name, true, rep, figure(perGiB(cpu, c.Size)))
	e.rec("put-rss/"+f.name, true, rep, figure(rss))
}

func (e *env) putAlone(f *fake, rep int) {
	key := "put/" + f.name
	var res struct {
		Seconds float64 `json:"seconds"`
		CPU     float64 `json:"cpu_seconds"`
		Calls   float64 `json:"calls"`
	}
	err := e.driverAlone(f, &res, "put", "-path", fmt.Sprintf("/bench-put/alone-%d.bin", rep),
		"-size", strconv.FormatInt(e.o.put, 10), "-seed", strconv.FormatUint(e.nextSeed(), 10))
	if err != nil {
		e.failed(key, err)
		return
	}
	e.rec(key, false, rep, sample{v: float64(e.o.put) / mib / res.Seconds, calls: res.Calls})
	e.rec("put-cpu/"+f.name, false, rep, figure(perGiB(res.CPU, e.o.put)))
}

// putDir PUTs small files into the full folder and into the empty one,
// alternately, through one bridge that has listed both: a PUT's cost
// must not grow with the folder it lands in.
func (e *env) putDir(f *fake, rep int, bridgeFirst bool) {
	key := "putdir/" + f.name
	b, err := e.startBridge("", f.mount())
	if err != nil {
		e.failed(key, err)
		return
	}
	defer b.stop()
	full, empty := b.base+f.mountPath()+"/bench-many/", b.base+f.mountPath()+"/bench-empty/"
	if _, err := propfindEntries(full, e.o.files+1); err != nil {
		e.failed(key, err)
		return
	}
	if _, _, err := propfind(empty, "1"); err != nil {
		e.failed(key, err)
		return
	}
	ctx, cancel := bg(10 * time.Minute)
	defer cancel()
	var put1 []string
	defer func() {
		for _, u := range put1 {
			del(u)
		}
	}()
	one := func(dir string, k int) (ms, calls float64, err error) {
		url := dir + fmt.Sprintf("put-%d-%d.bin", rep, k)
		c0, err := b.calls(f.mountPath())
		if err != nil {
			return 0, 0, err
		}
		d, err := put(ctx, url, content.New(e.nextSeed(), e.o.putDirSize))
		if err != nil {
			return 0, 0, err
		}
		put1 = append(put1, url)
		c1, err := b.calls(f.mountPath())
		return d.Seconds() * 1000, c1 - c0, err
	}
	// One PUT first, untimed: a fresh bridge's first upload also asks
	// for the quota, which would land on one folder only.
	if _, _, err := one(empty, -1); err != nil {
		e.failed(key, err)
		return
	}
	var fullMs, emptyMs, fullCalls, emptyCalls []float64
	for k := range e.o.samples {
		dirs := []string{full, empty}
		if (k%2 == 0) != bridgeFirst {
			dirs = []string{empty, full}
		}
		for _, dir := range dirs {
			ms, calls, err := one(dir, k)
			if err != nil {
				e.failed(key, err)
				return
			}
			if dir == full {
				fullMs, fullCalls = append(fullMs, ms), append(fullCalls, calls)
			} else {
				emptyMs, emptyCalls = append(emptyMs, ms), append(emptyCalls, calls)
			}
		}
	}
	e.rec(key, true, rep, sample{v: median(fullMs), calls: median(fullCalls)})
	e.rec(key, false, rep, sample{v: median(emptyMs), calls: median(emptyCalls)})
}

// coldGap is the idle time before each cold listing, on both sides: the
// bridge's listings live 1 s, and a process idle that long starts with
// cold CPU caches, which must not count against one side only.
const coldGap = 1200 * time.Millisecond

// coldBridge times PROPFIND Depth 1 of the full folder on a bridge whose
// listings live 1 s: after one request that logs in and opens the
// connections, each timed request waits for the cache to expire.
func (e *env) coldBridge(f *fake, rep int) {
	key := "cold/" + f.name
	b, err := e.startBridge("1s", f.mount())
	if err != nil {
		e.failed(key, err)
		return
	}
	defer b.stop()
	url := b.base + f.mountPath() + "/bench-many/"
	if _, err := propfindEntries(url, e.o.files+1); err != nil {
		e.failed(key, err)
		return
	}
	var ms []float64
	var calls float64
	for range e.o.samples {
		time.Sleep(coldGap)
		c0, err := b.calls(f.mountPath())
		var d time.Duration
		if err == nil {
			d, err = propfindEntries(url, e.o.files+1)
		}
		c1, cerr := b.calls(f.mountPath())
		if err == nil {
			err = cerr
		}
		if err != nil {
			e.failed(key, err)
			return
		}
		ms, calls = append(ms, d.Seconds()*1000), calls+c1-c0
	}
	e.rec(key, true, rep, sample{v: median(ms), calls: calls / float64(len(ms)), rss: b.peakRSS()})
}

func (e *env) coldAlone(f *fake, rep int) {
	key := "cold/" + f.name
	var res struct {
		Seconds []float64 `json:"seconds"`
		Calls   float64   `json:"calls"`
		Entries int       `json:"entries"`
	}
	if err := e.driverAlone(f, &res, "list", "-path", "/bench-many", "-samples", strconv.Itoa(e.o.samples), "-gap", coldGap.String()); err != nil {
		e.failed(key, err)
		return
	}
	if res.Entries != e.o.files {
		e.failed(key, fmt.Errorf("the driver lists %d entries in /bench-many, want %d", res.Entries, e.o.files))
		return
	}
	e.rec(key, false, rep, sample{v: median(res.Seconds) * 1000, calls: res.Calls})
}

// byteRange is one Range header and the bytes it must give.
type byteRange struct {
	header    string
	off, size int64
}

// bigRanges are ranges across 2^31 and 2^32, past 4 GiB, at the end, a
// suffix and an open end; those that do not fit a smaller file are left
// out.
func bigRanges(n int64) []byteRange {
	var rs []byteRange
	add := func(off, size int64) {
		if off >= 0 && off+size <= n {
			rs = append(rs, byteRange{fmt.Sprintf("bytes=%d-%d", off, off+size-1), off, size})
		}
	}
	add(1<<31-512<<10, 1<<20)
	add(1<<32-512<<10, 1<<20)
	add(1<<32+7, 1)
	add(n/2+12345, 64<<10)
	add(n-1<<20, 1<<20)
	rs = append(rs, byteRange{"bytes=-65536", n - 65536, 65536})
	open := int64(1<<32 + 12345)
	if open >= n {
		open = n * 3 / 4
	}
	rs = append(rs, byteRange{fmt.Sprintf("bytes=%d-", open), open, n - open})
	return rs
}

// bigFile sends a -big-size file through f's mount and checks it: the PUT,
// its size in PROPFIND, a whole GET and ranges past 4 GiB, each byte
// against the content's seed.
func (e *env) bigFile(f *fake) {
	key := "big/" + f.name
	n := e.o.bigSize
	var st syscall.Statfs_t
	if err := syscall.Statfs(e.work, &st); err == nil {
		// The bridge's temp file, the fake's parts and its joined file.
		if free := int64(st.Bavail) * st.Bsize; free < 3*n+4*gib {
			e.failed(key, fmt.Errorf("%s free in %s, %s needed", size(free), e.work, size(3*n+4*gib)))
			return
		}
	}
	logf("big file: %s through %s", size(n), f.name)
	b, err := e.startBridge("", f.mount())
	if err != nil {
		e.failed(key, err)
		return
	}
	defer b.stop()
	url := b.base + f.mountPath() + "/bench-big.bin"
	c := content.New(e.nextSeed(), n)
	ctx, cancel := bg(2 * time.Hour)
	defer cancel()
	res := sample{calls: math.NaN(), ok: true}
	var problems []string
	bad := func(what string, err error) {
		res.ok = false
		problems = append(problems, what+": "+firstLine(err.Error()))
	}
	d, err := put(ctx, url, c)
	if err != nil {
		bad("PUT", err)
		res.text = "**" + strings.Join(problems, "; ") + "**"
		e.rec(key, true, 0, res)
		return
	}
	putRSS := b.peakRSS()
	parts := []string{fmt.Sprintf("PUT %.0f MiB/s", mibPerSec(n, d))}
	logf("  PUT done: %.0f MiB/s, RSS %.0f MiB", mibPerSec(n, d), putRSS)
	if got, err := propSize(url); err != nil {
		bad("PROPFIND", err)
	} else if got != n {
		bad("PROPFIND", fmt.Errorf("size %d, want %d", got, n))
	} else {
		parts = append(parts, "size right")
	}
	t0 := time.Now()
	if err := getCompare(ctx, url, "", c, 0, n); err != nil {
		bad("GET", err)
	} else {
		parts = append(parts, fmt.Sprintf("GET %.0f MiB/s equal", mibPerSec(n, time.Since(t0))))
	}
	logf("  GET done")
	rs := bigRanges(n)
	past := 0
	for _, r := range rs {
		if err := getCompare(ctx, url, r.header, c, r.off, r.size); err != nil {
			bad("GET "+r.header, err)
			continue
		}
		if r.off+r.size > 1<<32 {
			past++
		}
	}
	parts = append(parts, fmt.Sprintf("%d of %d ranges equal (%d past 4 GiB)", len(rs)-countPrefix(problems, "GET bytes"), len(rs), past))
	res.rss = b.peakRSS()
	if err := del(url); err != nil {
		bad("DELETE", err)
	}
	if putRSS > 32 {
		res.ok = false
	}
	res.text = strings.Join(parts, ", ") + fmt.Sprintf(" · RSS %.0f MiB after the PUT, %.0f MiB in all", putRSS, res.rss)
	if len(problems) > 0 {
		res.text += " · **" + strings.Join(problems, "; ") + "**"
	}
	logf("  %s", res.text)
	e.rec(key, true, 0, res)
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// fsyncFile writes what the page cache holds of file to disk.
func fsyncFile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
