package pricing

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardenhq/warden/policy/yamldoc"
	"go.yaml.in/yaml/v3"
)

// Limits on a price file. A realistic file is far below each.
const (
	// MaxFileBytes is the largest price file Load accepts.
	MaxFileBytes = 1 << 20
	// MaxPrice is the largest price accepted, in dollars per million tokens.
	MaxPrice = 1_000_000
	// maxNameBytes bounds a model ID or alias.
	maxNameBytes = 256
	// maxErrors bounds the errors one load reports.
	maxErrors = 50
)

// Error is one problem in a price file, where it was written.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error formats e as "file:line:column: message".
func (e *Error) Error() string {
	s := e.File
	if s == "" {
		s = "<input>"
	}
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			s += ":" + strconv.Itoa(e.Column)
		}
	}
	return s + ": " + e.Msg
}

// ErrorList is every problem found in one load, in file order.
type ErrorList []*Error

// Error joins the errors one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load parses a price file (the format of prices.yaml, described at its
// top) strictly: the file is at most MaxFileBytes of UTF-8 YAML, one
// document without anchors or aliases; an unknown key, a name used twice,
// a missing, malformed (anything but a plain decimal with at most nine
// decimals) or negative price is an error. Every problem found is
// returned, located, as an ErrorList; name is the file name they carry.
func Load(name string, data []byte) (*Table, error) {
	d := &decoder{file: name}
	root := d.parse(data)
	if root == nil {
		return nil, d.errs
	}
	t := &Table{providers: map[string]map[string]*entry{}}
	d.table(root, t)
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, d.errs
	}
	return t, nil
}

type decoder struct {
	file string
	errs ErrorList
}

func (d *decoder) add(n *yaml.Node, format string, args ...any) {
	e := &Error{File: d.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, e)
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &Error{File: d.file, Line: e.Line, Msg: "too many errors; stopped"})
	}
}

// parse checks the raw bytes and returns the document's top node.
func (d *decoder) parse(data []byte) *yaml.Node {
	if len(data) > MaxFileBytes {
		d.add(nil, "file is %d bytes; the limit is %d", len(data), MaxFileBytes)
		return nil
	}
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:validPrefix(data)], []byte("\n"))
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: "invalid UTF-8"})
		return nil
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1 + bytes.Count(data[:i], []byte("\n")), Msg: "NUL byte"})
		return nil
	}
	var root yaml.Node
	if err := yamldoc.Parse(data, &root, "price file"); err != nil {
		line, msg := yamldoc.ErrorLine(err)
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: msg})
		return nil
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1, Msg: "file is empty; start with: version: 1"})
		return nil
	}
	return root.Content[0]
}

func validPrefix(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// plain reports whether n may stand in a price file, which is
// anything but an alias or an anchored node.
func (d *decoder) plain(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.add(n, "anchors and aliases are not allowed in a price file")
		return false
	}
	return true
}

func (d *decoder) mapping(n *yaml.Node, what string) bool {
	if !d.plain(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.add(n, "%s must be a mapping", what)
		return false
	}
	return true
}

// keys walks the key/value pairs of mapping n, reporting keys that are
// not scalars or are given twice.
func (d *decoder) keys(n *yaml.Node, each func(k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.plain(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k, "a key must be a plain string")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.add(k, "%q is given twice (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if !d.plain(v) {
			continue
		}
		each(k, v)
	}
}

func (d *decoder) table(root *yaml.Node, t *Table) {
	if !d.mapping(root, "a price file") {
		return
	}
	version := false
	d.keys(root, func(k, v *yaml.Node) {
		switch k.Value {
		case "version":
			version = true
			if v.Kind != yaml.ScalarNode || v.Value != "1" {
				d.add(v, "unsupported version %q; this Warden reads version 1", v.Value)
			}
		case Anthropic, OpenAI, Bedrock:
			d.provider(k.Value, v, t)
		default:
			d.add(k, "unknown key %q; expected version or a provider (%s)", k.Value, strings.Join(providers, ", "))
		}
	})
	if !version {
		d.add(root, "missing version; start the file with: version: 1")
	}
}

// names tracks where each model name of a provider was first given.
type names map[string]*yaml.Node

func (d *decoder) provider(provider string, n *yaml.Node, t *Table) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "openai:" with nothing under it
	}
	if !d.mapping(n, "provider "+provider) {
		return
	}
	byName := map[string]*entry{}
	given := names{}
	d.keys(n, func(k, v *yaml.Node) {
		if !d.name(k, "model ID") || !d.claim(given, k) {
			return
		}
		e := d.model(provider, k, v, given)
		if e == nil {
			return
		}
		for _, name := range append([]string{e.id}, e.aliases...) {
			byName[name] = e
		}
	})
	if len(byName) > 0 {
		t.providers[provider] = byName
	}
}

// name checks that n is a usable model ID or alias.
func (d *decoder) name(n *yaml.Node, what string) bool {
	s := n.Value
	switch {
	case n.Kind != yaml.ScalarNode:
		d.add(n, "%s must be a string", what)
	case s == "":
		d.add(n, "%s is empty", what)
	case len(s) > maxNameBytes:
		d.add(n, "%s is %d bytes; the limit is %d", what, len(s), maxNameBytes)
	case strings.IndexFunc(s, func(r rune) bool { return !nameRune(r) }) >= 0:
		d.add(n, "%s %q has a character outside A-Z a-z 0-9 . - _ : / @ +", what, s)
	default:
		return true
	}
	return false
}

func nameRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_:/@+", r)
}

// claim records name n for its provider, refusing a name already given.
func (d *decoder) claim(given names, n *yaml.Node) bool {
	if first, ok := given[n.Value]; ok {
		d.add(n, "model name %q is already given at line %d", n.Value, first.Line)
		return false
	}
	given[n.Value] = n
	return true
}

// rateFields are the keys of a set of rates, in the order they are read.
var rateFields = []string{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}

func (d *decoder) model(provider string, k, n *yaml.Node, claimed names) *entry {
	id := k.Value
	if !d.mapping(n, "model "+strconv.Quote(id)) {
		return nil
	}
	e := &entry{id: id}
	rates, given := map[string]Money{}, map[string]bool{}
	var long *LongContext
	premium := int64(0)
	ok := true
	d.keys(n, func(k, v *yaml.Node) {
		switch key := k.Value; key {
		case "aliases":
			if v.Kind != yaml.SequenceNode {
				d.add(v, "aliases must be a list of model names")
				ok = false
				return
			}
			for _, a := range v.Content {
				if !d.plain(a) || !d.name(a, "alias") || !d.claim(claimed, a) {
					ok = false
					continue
				}
				e.aliases = append(e.aliases, a.Value)
			}
		case "long_context":
			long = d.longContext(provider, v)
			ok = ok && long != nil
		case "regional_premium_percent":
			if provider != Bedrock {
				d.add(k, "regional_premium_percent applies to bedrock only")
				ok = false
				return
			}
			p, err := strconv.ParseInt(v.Value, 10, 64)
			if v.Kind != yaml.ScalarNode || err != nil || p < 0 || p > 100 {
				d.add(v, "regional_premium_percent must be a whole number from 0 to 100, got %q", v.Value)
				ok = false
				return
			}
			premium = p
		default:
			if !slices.Contains(rateFields, key) {
				allowed := append(append([]string{"aliases"}, allowedRates(provider)...), "long_context")
				if provider == Bedrock {
					allowed = append(allowed, "regional_premium_percent")
				}
				d.unknown(k, "model "+strconv.Quote(id), allowed)
				ok = false
				return
			}
			given[key] = true
			ok = d.rate(provider, k, v, rates) && ok
		}
	})
	if !d.complete(provider, k, given, "model "+strconv.Quote(id)) || !ok {
		return nil
	}
	p := Price{Provider: provider, Model: id, LongContext: long}
	p.Input, p.Output, p.CacheWrite5m, p.CacheWrite1h, p.CacheRead = ratesOf(provider, rates).fields()
	e.global, e.regional = p, p
	if premium > 0 {
		e.regional = withPremium(p, premium)
	}
	return e
}

func (d *decoder) longContext(provider string, n *yaml.Node) *LongContext {
	if !d.mapping(n, "long_context") {
		return nil
	}
	lc := &LongContext{}
	rates, given := map[string]Money{}, map[string]bool{}
	ok := true
	d.keys(n, func(k, v *yaml.Node) {
		given[k.Value] = true
		if k.Value == "above" {
			a, err := strconv.ParseInt(v.Value, 10, 64)
			if v.Kind != yaml.ScalarNode || err != nil || a <= 0 {
				d.add(v, "above must be a positive whole number of prompt tokens, got %q", v.Value)
				ok = false
				return
			}
			lc.Above = a
			return
		}
		if !slices.Contains(rateFields, k.Value) {
			d.unknown(k, "long_context", append([]string{"above"}, allowedRates(provider)...))
			ok = false
			return
		}
		ok = d.rate(provider, k, v, rates) && ok
	})
	if !given["above"] {
		d.add(n, "long_context is missing above (the prompt size in tokens from which its prices apply)")
		ok = false
	}
	if !d.complete(provider, n, given, "long_context") || !ok {
		return nil
	}
	lc.Rates = ratesOf(provider, rates)
	return lc
}

// unknown reports key k, not one of allowed, in where.
func (d *decoder) unknown(k *yaml.Node, where string, allowed []string) {
	d.add(k, "unknown key %q in %s%s; allowed: %s", k.Value, where, yamldoc.DidYouMean(k.Value, allowed), strings.Join(allowed, ", "))
}

// rate reads the price v of key k into rates.
func (d *decoder) rate(provider string, k, v *yaml.Node, rates map[string]Money) bool {
	key := k.Value
	if provider == OpenAI && strings.HasPrefix(key, "cache_write_") {
		d.add(k, "openai has no cache-write price (a cache write costs the input price); remove %s", key)
		return false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		d.add(v, "%s must be a price in dollars per million tokens, such as 3.75", key)
		return false
	}
	m, err := parseDollars(v.Value)
	if err != nil {
		d.add(v, "%s: %v", key, err)
		return false
	}
	rates[key] = m
	return true
}

func allowedRates(provider string) []string {
	if provider == OpenAI {
		return []string{"input", "output", "cache_read"}
	}
	return rateFields
}

// complete reports the prices a provider requires that were not given.
func (d *decoder) complete(provider string, n *yaml.Node, given map[string]bool, what string) bool {
	var missing []string
	for _, f := range allowedRates(provider) {
		if !given[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		d.add(n, "%s is missing %s", what, strings.Join(missing, ", "))
		return false
	}
	return true
}

// ratesOf builds Rates from the keys read; at openai a cache write costs
// the input price.
func ratesOf(provider string, m map[string]Money) Rates {
	r := Rates{Input: m["input"], Output: m["output"], CacheWrite5m: m["cache_write_5m"], CacheWrite1h: m["cache_write_1h"], CacheRead: m["cache_read"]}
	if provider == OpenAI {
		r.CacheWrite5m, r.CacheWrite1h = r.Input, r.Input
	}
	return r
}

func (r Rates) fields() (in, out, w5m, w1h, read Money) {
	return r.Input, r.Output, r.CacheWrite5m, r.CacheWrite1h, r.CacheRead
}

// withPremium raises every price of p by pct percent, rounding up to the
// nano-dollar.
func withPremium(p Price, pct int64) Price {
	up := func(m Money) Money { return Money((int64(m)*(100+pct) + 99) / 100) } // m <= MaxPrice dollars: no overflow
	raise := func(r Rates) Rates {
		return Rates{Input: up(r.Input), Output: up(r.Output), CacheWrite5m: up(r.CacheWrite5m), CacheWrite1h: up(r.CacheWrite1h), CacheRead: up(r.CacheRead)}
	}
	base := raise(p.Rates(0))
	p.Input, p.Output, p.CacheWrite5m, p.CacheWrite1h, p.CacheRead = base.fields()
	if p.LongContext != nil {
		lc := *p.LongContext
		lc.Rates = raise(lc.Rates)
		p.LongContext = &lc
	}
	return p
}

// parseDollars reads a price written as a plain decimal number of dollars
// ("3", "0.30", "0.025") exactly, into Money.
func parseDollars(s string) (Money, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative price %q", s)
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || (dot && (frac == "" || !digits(frac))) {
		return 0, fmt.Errorf("%q is not a price; write dollars per million tokens as a plain decimal such as 3 or 0.30", s)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("%q has more than nine decimals (finer than a nano-dollar per million tokens)", s)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 7 {
		return 0, fmt.Errorf("price %s is above the limit of %d dollars per million tokens", s, MaxPrice)
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	m := Money(w)*Dollar + Money(f)
	if m > MaxPrice*Dollar {
		return 0, fmt.Errorf("price %s is above the limit of %d dollars per million tokens", s, MaxPrice)
	}
	return m, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
