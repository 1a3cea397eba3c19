package policy

import (
	"strings"
	"unicode/utf8"
)

// A pattern is a compiled glob: * matches any run of characters (including
// / and :), ? matches exactly one character, everything else matches itself.
// These are IAM's wildcard semantics, used for every kind of resource so that
// one rule reads the same everywhere. Common shapes are matched without the
// general algorithm; nothing allocates.
type pattern struct {
	text string // as written, for messages
	src  string // as matched: lower-cased when fold
	kind patternKind
	lit  string // the literal part for exact, prefix, suffix and contains
	fold bool   // ASCII case-insensitive (IAM action names)
}

type patternKind uint8

const (
	patAny      patternKind = iota // *
	patExact                       // abc
	patPrefix                      // abc*
	patSuffix                      // *abc
	patContains                    // *abc*
	patGlob                        // anything else
)

// compilePattern classifies src. fold makes matching ASCII case-insensitive.
func compilePattern(src string, fold bool) pattern {
	p := pattern{text: src, src: src, fold: fold}
	if fold {
		p.src = strings.ToLower(src)
	}
	s := p.src
	if strings.Trim(s, "*") == "" && s != "" {
		p.kind = patAny
		return p
	}
	if strings.IndexByte(s, '?') >= 0 {
		p.kind = patGlob
		return p
	}
	inner := strings.Trim(s, "*")
	if strings.IndexByte(inner, '*') >= 0 {
		p.kind = patGlob
		return p
	}
	lead, trail := strings.HasPrefix(s, "*"), strings.HasSuffix(s, "*")
	p.lit = inner
	switch {
	case lead && trail && !fold:
		p.kind = patContains
	case lead && trail:
		p.kind = patGlob
	case lead:
		p.kind = patSuffix
	case trail:
		p.kind = patPrefix
	default:
		p.kind = patExact
	}
	return p
}

// hasWildcard reports whether s contains a glob metacharacter.
func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

// match reports whether s matches the pattern.
func (p *pattern) match(s string) bool {
	switch p.kind {
	case patAny:
		return true
	case patExact:
		return len(s) == len(p.lit) && eq(s, p.lit, p.fold)
	case patPrefix:
		return len(s) >= len(p.lit) && eq(s[:len(p.lit)], p.lit, p.fold)
	case patSuffix:
		return len(s) >= len(p.lit) && eq(s[len(s)-len(p.lit):], p.lit, p.fold)
	case patContains:
		return strings.Contains(s, p.lit)
	}
	return globMatch(p.src, s, p.fold, false)
}

// matchPrefix reports whether some string that starts with s matches the
// pattern: s is the literal start of a command whose rest is not known.
func (p *pattern) matchPrefix(s string) bool {
	return globMatch(p.src, s, p.fold, true)
}

func eq(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// globMatch matches s against pat (pat already lower-cased when fold). It
// runs in O(len(pat)·len(s)) at worst: a later * supersedes the backtrack
// point of an earlier one. With prefix, running out of s while the pattern
// still could go on counts as a match.
func globMatch(pat, s string, fold, prefix bool) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[sx:])
				px, sx = px+1, sx+n
				continue
			default:
				sc := s[sx]
				if fold {
					sc = lower(sc)
				}
				if sc == c {
					px, sx = px+1, sx+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		px, sx = starP+1, starS
	}
	if prefix {
		return true
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	return px == len(pat)
}
