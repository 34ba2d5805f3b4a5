package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func newBasic(t *testing.T) *Basic {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBasic("test", []Account{{User: User{Name: "alice", Mounts: []string{"/a"}}, PasswordHash: string(h)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBasicMiddleware(t *testing.T) {
	b := newBasic(t)
	var seen *User
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = UserFrom(r.Context()) }), nil, nil)
	for _, tc := range []struct {
		user, pass string
		set        bool
		status     int
	}{
		{"", "", false, 401},
		{"alice", "badpass42", true, 401},
		{"mallory", "s3cret", true, 401},
		{"alice", "s3cret", true, 200},
		{"alice", "s3cret", true, 200}, // from the verified cache
	} {
		seen = nil
		r := httptest.NewRequest("GET", "/", nil)
		if tc.set {
			r.SetBasicAuth(tc.user, tc.pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Fatalf("%s/%s: %d, want %d", tc.user, tc.pass, w.Code, tc.status)
		}
		if tc.status == 401 {
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Basic realm="test"`) || seen != nil {
				t.Fatalf("401 without challenge or handler reached: %q", w.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(w.Body.String(), tc.pass) && tc.pass != "" {
				t.Fatal("password echoed in the body")
			}
		} else if seen == nil || seen.Name != "alice" {
			t.Fatalf("user not passed on: %+v", seen)
		}
	}
}

func TestCanSee(t *testing.T) {
	u := &User{Mounts: []string{"/a"}}
	if !u.CanSee("/a") || u.CanSee("/b") {
		t.Fatal("mount list not honoured")
	}
	if !(&User{Mounts: []string{"*"}}).CanSee("/b") {
		t.Fatal("* should see all")
	}
}

func TestThrottleAfterTooManyFailures(t *testing.T) {
	b := newBasic(t)
	th := NewThrottle(3, time.Minute, 5*time.Minute)
	now := time.Unix(1000, 0)
	th.now = func() time.Time { return now }
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), th, nil)
	try := func(addr, pass string, set bool) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if set {
			r.SetBasicAuth("alice", pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for i := 0; i < 10; i++ {
		if code := try("10.0.0.1:5555", "", false); code != 401 {
			t.Fatalf("challenge request %d: %d", i, code)
		}
	}
	for i := 0; i < 3; i++ {
		if code := try("10.0.0.1:5555", "guess", true); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := try("10.0.0.1:6666", "guess", true); code != 401 {
		t.Fatalf("4th failure: %d", code)
	}
	if code := try("10.0.0.1:7777", "s3cret", true); code != 429 {
		t.Fatalf("blocked client with the right password: %d, want 429", code)
	}
	if code := try("10.0.0.2:1", "s3cret", true); code != 200 {
		t.Fatalf("another client: %d", code)
	}
	now = now.Add(5*time.Minute + time.Second)
	if code := try("10.0.0.1:7777", "s3cret", true); code != 200 {
		t.Fatalf("after the block: %d", code)
	}
}
