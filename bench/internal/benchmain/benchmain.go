// Package benchmain is what the benchmark programs' mains share: their
// flag sets, and running the benchmark until it ends or SIGINT or SIGTERM
// stops it.
package benchmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// FlagSet returns a flag set that reports errors to its caller rather than
// exiting.
func FlagSet(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}

// Run parses the program's arguments with fs and runs the benchmark with a
// context that SIGINT and SIGTERM cancel, writing the report to stdout and
// progress to stderr. It exits 2 on bad flags and 1 when run fails, with
// the error after fs's name; -h prints the flags and returns.
func Run(fs *flag.FlagSet, run func(ctx context.Context, stdout, stderr io.Writer) error) {
	if err := fs.Parse(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", fs.Name(), err)
		stop()
		os.Exit(1)
	}
}
