// Package pricing holds what model calls cost: the price table (per
// provider and model: input, output, cache writes by lifetime, cache
// reads) and the arithmetic from token counts to money, exact in integers.
//
// # The table
//
// Default is the table in prices.yaml, embedded in the binary. Each entry
// gives a model's prices in US dollars per million tokens, as providers
// publish them; Lookup finds an entry by provider and model ID (or alias).
// A model that is not in the table is unknown: Lookup says so, and the
// caller refuses or holds the call rather than price it at zero.
//
// # Updating prices
//
// Providers change prices and add models faster than Warden is released.
// An operator keeps a file of the same format with only the entries that
// differ or are missing, and gives it to the gateway with --prices FILE.
// The gateway loads it with Load (strict: an unknown key, a duplicate
// name, a missing, malformed or negative price is an error with its
// file:line, and the gateway does not start) and lays it over the
// defaults with Merge: an entry in the file replaces the default entry of
// the same model ID, keeping that entry's aliases, and every name the file
// gives (ID or alias) now means the file's entry. For example:
//
//	version: 1
//	anthropic:
//	  claude-sonnet-4-5-20250929:   # a negotiated price
//	    input: 2.70
//	    output: 13.50
//	    cache_write_5m: 3.375
//	    cache_write_1h: 5.40
//	    cache_read: 0.27
//	openai:
//	  gpt-6-codex:                  # a model newer than this release
//	    input: 2
//	    cache_read: 0.20
//	    output: 16
//
// To change the defaults themselves, edit prices.yaml, update the source
// and date at its top, and run the package tests: a file that does not
// load fails them.
//
// # Arithmetic
//
// Tokens counts what a call consumed in one convention for every provider
// (see its documentation); Price.Cost turns it into Money exactly, with
// 128-bit intermediate products, rounded up to the next nano-dollar, and
// Price.WorstCase bounds a call's cost before it runs, for budgets that
// reserve first and settle later.
package pricing
