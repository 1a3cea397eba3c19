//go:build !linux

package main

import (
	"errors"
	"time"
)

func dropPageCache() error { return errors.New("not supported on this system (Linux only)") }

func residentFraction(string) float64 { return -1 }

func diskReadBytes() int64 { return -1 }

func processCPU() time.Duration { return 0 }

func machineCPU() (busy, total int64, ok bool) { return 0, 0, false }
