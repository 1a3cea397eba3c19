package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenhq/warden/bench/gatewaybench"
	"github.com/wardenhq/warden/bench/internal/benchmain"
	"github.com/wardenhq/warden/bench/internal/child"
)

// The first argument that makes this program one of its servers instead
// of the benchmark.
const (
	standInFlag = "--stand-in"
	proxyFlag   = "--reverse-proxy"
)

// runServer runs one of the servers this program is re-executed as, if
// args ask for one.
func runServer(args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case standInFlag:
		return true, standInServer(args[1:])
	case proxyFlag:
		return true, proxyServer(args[1:])
	}
	return false, nil
}

// standInServer serves gatewaybench.StandIn: the upstream every target is
// in front of.
func standInServer(args []string) error {
	fs := benchmain.FlagSet(standInFlag)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	key := fs.String("key", "", "the only x-api-key accepted (requests without one are accepted too)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return child.Serve(*addr, &gatewaybench.StandIn{Key: *key})
}

// proxyServer is the baseline proxy: a bare httputil.ReverseProxy on the
// default transport, which flushes SSE answers as they arrive. Its one
// addition is full duplex: without it the HTTP/1 server closes the inbound
// body once the answer's headers go out, the transport's last read of it
// fails, and the upstream connection is torn down mid-stream
// (golang/go#40747; here about 1 stream in 100 was cut).
func proxyServer(args []string) error {
	fs := benchmain.FlagSet(proxyFlag)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "URL of the upstream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--upstream %q: want an http URL", *upstream)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	return child.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
}

// startSelf starts this program as one of its servers and waits for its
// address.
func startSelf(ctx context.Context, name, dir string, args ...string) (*child.Process, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find this program to start the %s: %w", name, err)
	}
	p, err := child.Start(name, filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log"), nil, self, args...)
	if err != nil {
		return nil, "", err
	}
	addr, err := p.WaitLine(ctx, child.Listening, 30*time.Second)
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// findNginx returns the nginx binary to run. Missing, it installs the
// Debian package nginx if allowed to and able to (as root, with apt-get).
func findNginx(ctx context.Context, cfg config, progress io.Writer) (string, error) {
	if cfg.nginx != "" {
		return cfg.nginx, nil
	}
	look := func() (string, error) {
		if p, err := exec.LookPath("nginx"); err == nil {
			return p, nil
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx", nil
		}
		return "", errors.New("nginx is not installed (Debian: apt-get install nginx)")
	}
	bin, err := look()
	if err == nil || !cfg.installNginx {
		return bin, err
	}
	if _, aerr := exec.LookPath("apt-get"); aerr != nil || os.Geteuid() != 0 {
		return "", errors.New("nginx is not installed, and this program cannot install it (not root, or no apt-get): apt-get install nginx, or pass --nginx PATH")
	}
	fmt.Fprintln(progress, "nginx is not installed: installing the Debian package nginx (apt-get install -y nginx; --install-nginx=false to skip)")
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "nginx")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = progress, progress
		return cmd.Run()
	}
	if err := install(); err != nil {
		fmt.Fprintln(progress, "apt-get install failed; running apt-get update and trying again")
		update := exec.CommandContext(ctx, "apt-get", "update")
		update.Stdout, update.Stderr = progress, progress
		if err := errors.Join(update.Run(), install()); err != nil {
			return "", fmt.Errorf("install nginx with apt-get: %w", err)
		}
	}
	return look()
}

// nginxConfig is a reverse proxy on listen in front of upstream, its
// files under dir. One process (master_process off): the other targets are
// one process each too. Buffering is off, so that SSE events are passed on
// as they arrive; connections to the upstream are kept alive, as
// httputil.ReverseProxy's and Warden's are.
const nginxConfig = `daemon off;
master_process off;
worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events {
    worker_connections 8192;
}
http {
    access_log off;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    upstream standin {
        server {{upstream}};
        keepalive 256;
    }
    server {
        listen {{listen}};
        location / {
            proxy_pass http://standin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
}
`

// startNginx runs nginx in the foreground as a reverse proxy in front of
// upstream (host:port) and returns it with its address.
func startNginx(ctx context.Context, bin, dir, upstream string) (*child.Process, string, error) {
	dir = filepath.Join(dir, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	addr, err := child.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{upstream}}", upstream, "{{listen}}", addr).Replace(nginxConfig)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	p, err := child.Start("nginx", filepath.Join(dir, "stderr.log"), nil, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath)
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitListening(ctx, addr, 10*time.Second); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("%w\n--- %s ---\n%s", err, filepath.Join(dir, "error.log"), readTail(filepath.Join(dir, "error.log")))
	}
	return p, addr, nil
}

// nginxVersion returns what `nginx -v` prints, e.g. "nginx/1.22.1".
func nginxVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return "nginx (version unknown)"
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "version: ")
	return v
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
