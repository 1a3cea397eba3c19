package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// trivialFlag, as the first argument, makes this program the trivial
// server instead of the benchmark.
const trivialFlag = "--trivial-server"

// trivialListening starts the line the trivial server prints once it
// accepts connections.
const trivialListening = "listening on "

// trivialServer is the baseline: a plain net/http server whose hook route
// reads the request body and answers a fixed JSON reply of the size
// Warden's decision has. It runs until SIGTERM or SIGINT.
func trivialServer(args []string) error {
	fs := flagSet(trivialFlag)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	reply := fs.String("reply", `{}`, "the body of every answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(*reply)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hookPath, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	// The same limits as `warden serve`.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 90 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("%s%s\n", trivialListening, ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
