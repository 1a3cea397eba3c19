package main

import (
	"io"
	"net/http"

	"github.com/wardenhq/warden/bench/internal/benchmain"
	"github.com/wardenhq/warden/bench/internal/child"
)

// trivialFlag, as the first argument, makes this program the trivial
// server instead of the benchmark.
const trivialFlag = "--trivial-server"

// trivialServer is the baseline: a plain net/http server whose hook route
// reads the request body and answers a fixed JSON reply of the size
// Warden's decision has. It runs until SIGTERM or SIGINT.
func trivialServer(args []string) error {
	fs := benchmain.FlagSet(trivialFlag)
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
	return child.Serve(*addr, mux)
}
