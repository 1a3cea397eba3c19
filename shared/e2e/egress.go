package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// egressTrap is an HTTP proxy on 127.0.0.1 that refuses every request and records where it was
// going. The clients run with it as their proxy (and 127.0.0.1 exempt), so a call to an outside
// host fails at once instead of hanging, and a test can see that it was tried.
type egressTrap struct {
	srv   *httptest.Server
	mu    sync.Mutex
	hosts []string
}

func newEgressTrap(t testing.TB) *egressTrap {
	t.Helper()
	e := &egressTrap{}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host // CONNECT host:port, or the Host of an absolute-URI request
		if r.URL.Host != "" {
			host = r.URL.Host
		}
		e.mu.Lock()
		e.hosts = append(e.hosts, host)
		e.mu.Unlock()
		http.Error(w, "e2e: no outside network", http.StatusForbidden)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: egress trap listen: %v", err)
	}
	e.srv.Listener = l
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// env points both upper- and lower-case proxy variables at the trap, except for loopback.
func (e *egressTrap) env() []string {
	var env []string
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
		env = append(env, k+"="+e.srv.URL, strings.ToLower(k)+"="+e.srv.URL)
	}
	const noProxy = "127.0.0.1,localhost,::1"
	return append(env, "NO_PROXY="+noProxy, "no_proxy="+noProxy)
}

// attempts returns the hosts that requests through the trap were for.
func (e *egressTrap) attempts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hosts...)
}
