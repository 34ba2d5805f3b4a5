package faults

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs one "ok" API endpoint and one 64 KiB download behind l.
func serve(t *testing.T, l *Layer) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/api", l.Route("api", API, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})))
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	mux.Handle("/dl", l.Route("dl", Download, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})))
	srv := httptest.NewServer(l.Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	status int
	header http.Header
	body   string
	err    error // reading the answer failed (a cut)
}

func get(t *testing.T, method, u string) result {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func TestRateLimit(t *testing.T) {
	l := New(Config{RateLimit: 5})
	srv := serve(t, l)
	// Stay inside one wall-clock second, where the limit counts.
	if ms := time.Now().Nanosecond() / 1e6; ms > 700 {
		time.Sleep(time.Duration(1000-ms+10) * time.Millisecond)
	}
	var limited []result
	for i := 0; i < 8; i++ {
		if r := get(t, "GET", srv.URL+"/api"); r.status == http.StatusTooManyRequests {
			limited = append(limited, r)
		} else if r.status != http.StatusOK {
			t.Fatalf("call %d: %d", i, r.status)
		}
	}
	if len(limited) != 3 {
		t.Fatalf("%d of 8 calls limited at 5/s, want 3", len(limited))
	}
	if ra := limited[0].header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q", ra)
	}
	if l.Calls()["api"] != 8 || l.Injected()["429"] != 3 {
		t.Fatalf("calls %v, injected %v", l.Calls(), l.Injected())
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	if r := get(t, "GET", srv.URL+"/api"); r.status != http.StatusOK {
		t.Fatalf("the next second: %d", r.status)
	}
}

func TestScriptedFaults(t *testing.T) {
	l := New(Config{})
	l.SetErrorWriter(func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "shaped %d %s", status, msg)
	})
	srv := serve(t, l)
	l.Inject(Fault{Endpoint: "api", Skip: 1, Times: 2, Status: http.StatusBadGateway})
	l.Inject(Fault{Endpoint: "api", Answer: func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"code":40001}`)
	}})
	l.Fail("api", http.StatusTooManyRequests, 1)
	l.Cut("api", 1)
	l.Inject(Fault{Endpoint: "api"}) // no status: a 500, not a panic
	want := []struct {
		status int
		body   string
	}{
		{200, "ok"}, // skipped
		{502, "shaped 502 injected failure"},
		{502, "shaped 502 injected failure"},
		{200, `{"code":40001}`},
		{429, "shaped 429 injected failure"},
	}
	for i, w := range want {
		r := get(t, "GET", srv.URL+"/api")
		if r.status != w.status || r.body != w.body {
			t.Fatalf("call %d: %d %q, want %d %q", i, r.status, r.body, w.status, w.body)
		}
		if w.status == 429 && r.header.Get("Retry-After") != "1" {
			t.Fatalf("a scripted 429 without Retry-After: %v", r.header)
		}
	}
	if r := get(t, "GET", srv.URL+"/api"); r.err == nil {
		t.Fatalf("the cut answer arrived whole: %d %q", r.status, r.body)
	}
	if r := get(t, "GET", srv.URL+"/api"); r.status != 500 {
		t.Fatalf("a fault with no status: %d", r.status)
	}
	if r := get(t, "GET", srv.URL+"/api"); r.status != 200 || r.body != "ok" {
		t.Fatalf("after the faults: %d %q", r.status, r.body)
	}
	if n := l.Calls()["api"]; n != 8 {
		t.Fatalf("%d calls counted, want 8", n)
	}
}

func TestHold(t *testing.T) {
	l := New(Config{})
	srv := serve(t, l)
	hold := make(chan struct{})
	l.Inject(Fault{Endpoint: "api", Hold: hold})
	done := make(chan result)
	go func() { done <- get(t, "GET", srv.URL+"/api") }()
	select {
	case r := <-done:
		t.Fatalf("a held call answered: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	close(hold)
	if r := <-done; r.status != 200 || r.body != "ok" {
		t.Fatalf("released: %d %q", r.status, r.body)
	}
}

func TestRandomErrors(t *testing.T) {
	l := New(Config{ErrorRate: 1, Seed: 7})
	srv := serve(t, l)
	for i := 0; i < 10; i++ {
		r := get(t, "GET", srv.URL+"/api")
		if r.status < 500 || r.status > 599 {
			t.Fatalf("call %d: %d with ErrorRate 1", i, r.status)
		}
		if r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
			t.Fatal("a 503 without Retry-After")
		}
	}
	if l.Injected()["5xx"] != 10 {
		t.Fatalf("injected %v", l.Injected())
	}
	l.SetConfig(Config{})
	if r := get(t, "GET", srv.URL+"/api"); r.status != 200 {
		t.Fatalf("after SetConfig: %d", r.status)
	}
}

func TestCutDownloads(t *testing.T) {
	l := New(Config{CutRate: 1, Seed: 3})
	srv := serve(t, l)
	for i := 0; i < 5; i++ {
		r := get(t, "GET", srv.URL+"/dl")
		if r.err == nil || len(r.body) >= 64<<10 {
			t.Fatalf("download %d: %d bytes, err %v: want a short body and an error", i, len(r.body), r.err)
		}
	}
	// Only downloads are cut at random.
	if r := get(t, "GET", srv.URL+"/api"); r.err != nil || r.body != "ok" {
		t.Fatalf("an API call was cut: %q %v", r.body, r.err)
	}
	if l.Injected()["cut"] != 5 {
		t.Fatalf("injected %v", l.Injected())
	}
}

func TestLatency(t *testing.T) {
	l := New(Config{Latency: 50 * time.Millisecond})
	srv := serve(t, l)
	start := time.Now()
	get(t, "GET", srv.URL+"/api")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("answered in %v", d)
	}
}

func TestRestart(t *testing.T) {
	l := New(Config{})
	mux := http.NewServeMux()
	wrote, resume := make(chan struct{}), make(chan struct{})
	mux.Handle("/slow", l.Route("slow", Download, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "8")
		w.Write([]byte("half"))
		http.NewResponseController(w).Flush()
		close(wrote)
		<-resume
		w.Write([]byte("rest"))
	})))
	srv := httptest.NewServer(l.Handler(mux))
	t.Cleanup(srv.Close)
	var forgot atomic.Int32
	l.OnRestart(func() { forgot.Add(1) })

	done := make(chan result)
	go func() { done <- get(t, "GET", srv.URL+"/slow") }()
	<-wrote
	if r := get(t, "POST", srv.URL+RestartPath); r.status != 200 || !strings.Contains(r.body, "restarted") {
		t.Fatalf("POST %s: %d %q", RestartPath, r.status, r.body)
	}
	close(resume)
	if r := <-done; r.err == nil || r.body != "half" {
		t.Fatalf("the in-flight answer: %q, err %v: want it broken off after %q", r.body, r.err, "half")
	}
	if forgot.Load() != 1 || l.Restarts() != 1 || l.Injected()["restart-cut"] != 1 {
		t.Fatalf("hooks ran %d times, %d restarts, injected %v", forgot.Load(), l.Restarts(), l.Injected())
	}
	if r := get(t, "GET", srv.URL+RestartPath); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET %s: %d %v", RestartPath, r.status, r.header)
	}
	if l.Restarts() != 1 {
		t.Fatal("a GET restarted the fake")
	}
}

func TestLifetimesAndClock(t *testing.T) {
	l := New(Config{})
	if l.TokenTTL(time.Hour) != time.Hour || l.LinkTTL(10*time.Minute) != 10*time.Minute || l.RefreshTTL() != 0 {
		t.Fatal("the zero Config does not keep the fake's defaults")
	}
	l.SetConfig(Config{TokenTTL: time.Minute, LinkTTL: 30 * time.Second, RefreshTTL: 2 * time.Hour})
	if l.TokenTTL(time.Hour) != time.Minute || l.LinkTTL(10*time.Minute) != 30*time.Second || l.RefreshTTL() != 2*time.Hour {
		t.Fatalf("configured lifetimes not used: %+v", l.Config())
	}
	base := time.Unix(1_800_000_000, 0)
	l.SetClock(func() time.Time { return base })
	l.Advance(time.Minute)
	if got := l.Now(); !got.Equal(base.Add(time.Minute)) {
		t.Fatalf("clock at %v", got)
	}
}

func TestFlags(t *testing.T) {
	cfg := Hostile()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-token-ttl", "120s", "-rate-limit", "20", "-fault-seed", "9"}); err != nil {
		t.Fatal(err)
	}
	want := Hostile()
	want.TokenTTL, want.RateLimit, want.Seed = 120*time.Second, 20, 9
	if cfg != want {
		t.Fatalf("flags over Hostile: %+v, want %+v", cfg, want)
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse([]string{"-error-rate", "x"}); err == nil {
		t.Fatal("a bad -error-rate was taken")
	}
}

func TestCutKeepsTheFraming(t *testing.T) {
	l := New(Config{})
	const answer = `{"code":404,"msg":"Download session not exist"}` + "\n"
	mux := http.NewServeMux()
	mux.Handle("/json", l.Route("json", API, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, answer)
	})))
	mux.Handle("/empty", l.Route("empty", API, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	srv := httptest.NewServer(l.Handler(mux))
	t.Cleanup(srv.Close)
	l.Cut("json", 1)
	resp, err := http.Get(srv.URL + "/json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// As net/http frames a small answer: its status and length were sent.
	if resp.StatusCode != http.StatusCreated || resp.ContentLength != int64(len(answer)) || err == nil || len(b) != len(answer)/2 {
		t.Fatalf("cut answer: %d, Content-Length %d, %q, %v", resp.StatusCode, resp.ContentLength, b, err)
	}
	l.Cut("empty", 1)
	if r := get(t, "GET", srv.URL+"/empty"); r.status != http.StatusNoContent || r.err != nil {
		t.Fatalf("a cut answer with no body: %d %v", r.status, r.err)
	}
}
