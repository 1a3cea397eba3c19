//go:build !linux

package main

import "errors"

func dropPageCache() error { return errors.New("not supported on this system (Linux only)") }

func residentFraction(string) float64 { return -1 }

func diskReadBytes() int64 { return -1 }
