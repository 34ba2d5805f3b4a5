// Command plaindav serves a folder with golang.org/x/net/webdav's own
// webdav.Dir and nothing else but Basic authentication: the benchmark's
// floor for what a WebDAV server in Go costs. It runs as a process of its
// own so that its CPU time and memory are measured as the bridge's are.
//
//	plaindav -dir DIR -addr 127.0.0.1:0 -user U -pass P
//
// It prints its base URL on stdout once it listens.
package main

import (
	"crypto/subtle"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/net/webdav"
)

func main() {
	dir := flag.String("dir", "", "folder to serve")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	user := flag.String("user", "", "Basic user (none: no authentication)")
	pass := flag.String("pass", "", "Basic password")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "plaindav: -dir is required")
		os.Exit(2)
	}
	dav := &webdav.Handler{FileSystem: webdav.Dir(*dir), LockSystem: webdav.NewMemLS()}
	var h http.Handler = dav
	if *user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(*user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(*pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="plaindav"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			dav.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plaindav:", err)
		os.Exit(1)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, "plaindav:", err)
		os.Exit(1)
	}
}
