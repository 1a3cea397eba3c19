package shell

import (
	"strings"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// word is one shell word after quote removal. Expansions are kept as their
// source text and recorded in spans.
type word struct {
	text  string
	spans []span // byte ranges of text that are the source of an expansion, in order
	// multi reports that the word may become a number of words other than
	// one, or a different word: it has an unquoted expansion, "$@", an
	// unquoted glob or an unquoted brace expansion.
	multi bool
	brace bool       // the word has an unquoted brace expansion such as {a,b}
	pos   syntax.Pos // where the word starts in its source, for errors
}

// span is the byte range [start, end) of a text.
type span struct{ start, end int }

// dynamic reports whether w has an expansion.
func (w word) dynamic() bool { return len(w.spans) > 0 }

// dyn returns the offset of the first expansion in w.text, or -1.
func (w word) dyn() int {
	if len(w.spans) == 0 {
		return -1
	}
	return w.spans[0].start
}

// hasLiteral reports whether w.text has the byte c outside any expansion.
func (w word) hasLiteral(c byte) bool {
	prev := 0
	for _, sp := range w.spans {
		if strings.IndexByte(w.text[prev:sp.start], c) >= 0 {
			return true
		}
		prev = sp.end
	}
	return strings.IndexByte(w.text[prev:], c) >= 0
}

// from returns the part of w that starts at offset i, such as the value
// attached to an option (-uroot).
func (w word) from(i int) word {
	r := word{text: w.text[i:], multi: w.multi, pos: w.pos}
	for _, sp := range w.spans {
		if sp.end <= i {
			continue
		}
		r.spans = append(r.spans, span{start: max(sp.start, i) - i, end: sp.end - i})
	}
	return r
}

// base reduces a program word to its base name: /usr/bin/git becomes git and
// $HOME/bin/rm becomes rm. A word whose last / is followed by an expansion,
// that ends in /, or that has a brace expansion is kept whole.
func (w word) base() word {
	if w.brace {
		return w
	}
	start := 0
	if n := len(w.spans); n > 0 {
		start = w.spans[n-1].end
	}
	i := strings.LastIndexByte(w.text[start:], '/')
	if i < 0 || start+i == len(w.text)-1 {
		return w
	}
	return word{text: w.text[start+i+1:], multi: w.multi, pos: w.pos}
}

// join joins words with single spaces, as eval and watch do before running them.
func join(ws []word) word {
	if len(ws) == 1 {
		return ws[0]
	}
	var b strings.Builder
	var r word
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		off := b.Len()
		for _, sp := range w.spans {
			r.spans = append(r.spans, span{start: off + sp.start, end: off + sp.end})
		}
		b.WriteString(w.text)
		r.multi = r.multi || w.multi
	}
	r.text = b.String()
	if len(ws) > 0 {
		r.pos = ws[0].pos
	}
	return r
}

// litMode says how backslashes in a literal are removed.
type litMode int

const (
	litUnquoted litMode = iota // outside quotes: \x is x
	litDouble                  // in "…": \ quotes only $ ` " \ and newline
	litHeredoc                 // in a heredoc with an unquoted delimiter: \ quotes only $ ` \ and newline
	litRaw                     // in a heredoc with a quoted delimiter: no quote removal
)

// render removes quotes from w, whose node positions refer to src. Literal
// parts of a top-level word are read in mode.
func render(w *syntax.Word, src string, mode litMode) word {
	r := word{pos: w.Pos()}
	if len(w.Parts) == 1 {
		if l, ok := w.Parts[0].(*syntax.Lit); ok && (mode == litRaw || !strings.Contains(l.Value, `\`)) {
			// Fast path: one plain literal, the common case.
			r.text = l.Value
			if mode == litUnquoted {
				var g globState
				for i := 0; i < len(l.Value); i++ {
					g.byte(l.Value[i])
				}
				r.multi, r.brace = g.multi, g.braces
			}
			return r
		}
	}
	b := wordBuilder{src: src}
	for _, p := range w.Parts {
		b.part(p, mode)
	}
	r.text = string(b.buf)
	r.spans = b.spans
	r.multi = b.multi || b.glob.multi
	r.brace = b.glob.braces
	return r
}

// renderAssign renders an assignment of a declaration builtin as NAME=VALUE.
func renderAssign(a *syntax.Assign, src string) word {
	if a.Naked && a.Name == nil && a.Value != nil {
		return render(a.Value, src, litUnquoted) // an option such as -x
	}
	b := wordBuilder{src: src}
	var pos syntax.Pos
	if a.Name != nil {
		pos = a.Name.Pos()
		b.buf = append(b.buf, a.Name.Value...)
	}
	if a.Index != nil {
		b.buf = append(b.buf, '[')
		b.code(srcText(src, a.Index))
		b.buf = append(b.buf, ']')
	}
	if !a.Naked {
		if a.Append {
			b.buf = append(b.buf, '+')
		}
		b.buf = append(b.buf, '=')
	}
	switch {
	case a.Value != nil:
		for _, p := range a.Value.Parts {
			b.part(p, litUnquoted)
		}
	case a.Array != nil:
		b.code(srcText(src, a.Array))
	}
	return word{text: string(b.buf), spans: b.spans, pos: pos}
}

// srcText returns the source text of n.
func srcText(src string, n syntax.Node) string {
	start, end := n.Pos().Offset(), n.End().Offset()
	if start > end || end > uint(len(src)) {
		return "$?" // not expected; any text with an expansion keeps the word dynamic
	}
	return src[start:end]
}

// wordBuilder accumulates the rendering of a word's parts.
type wordBuilder struct {
	src   string
	buf   []byte
	spans []span
	multi bool
	glob  globState
}

// part renders p; mode applies to its literal parts outside double quotes.
func (b *wordBuilder) part(p syntax.WordPart, mode litMode) {
	switch p := p.(type) {
	case *syntax.Lit:
		b.lit(p.Value, mode)
	case *syntax.SglQuoted:
		if p.Dollar {
			b.buf = appendANSIC(b.buf, p.Value)
		} else {
			b.buf = append(b.buf, p.Value...)
		}
	case *syntax.DblQuoted:
		for _, q := range p.Parts {
			b.part(q, litDouble)
		}
	case *syntax.ParamExp:
		b.expansion(srcText(b.src, p), mode == litUnquoted || splitsQuoted(p))
	case *syntax.CmdSubst:
		b.expansion(srcText(b.src, p), mode == litUnquoted)
	case *syntax.ArithmExp:
		b.expansion(srcText(b.src, p), mode == litUnquoted)
	case *syntax.ProcSubst:
		b.expansion(srcText(b.src, p), false) // always one path such as /dev/fd/63
	case *syntax.ExtGlob, *syntax.BraceExp:
		b.buf = append(b.buf, srcText(b.src, p)...)
		b.multi = true
	default:
		b.expansion(srcText(b.src, p), true) // unknown parts are treated as expansions
	}
}

// expansion appends the source text of an expansion. multi reports that it
// may expand to a number of words other than one.
func (b *wordBuilder) expansion(text string, multi bool) {
	start := len(b.buf)
	b.buf = append(b.buf, text...)
	b.spans = append(b.spans, span{start: start, end: len(b.buf)})
	b.multi = b.multi || multi
}

// code appends source text that is literal unless it has an expansion.
func (b *wordBuilder) code(text string) {
	if strings.ContainsAny(text, "$`") {
		b.expansion(text, false)
		return
	}
	b.buf = append(b.buf, text...)
}

// lit appends a literal with its quoting backslashes removed according to mode.
func (b *wordBuilder) lit(v string, mode litMode) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && mode != litRaw {
			n := v[i+1]
			switch {
			case mode == litUnquoted,
				n == '$' || n == '`' || n == '\\' || n == '\n',
				n == '"' && mode == litDouble:
				i++
				if n != '\n' { // a backslash-newline joins lines
					b.buf = append(b.buf, n)
				}
				if mode == litUnquoted {
					b.glob.reset()
				}
				continue
			}
		}
		if mode == litUnquoted {
			b.glob.byte(c)
		}
		b.buf = append(b.buf, c)
	}
}

// splitsQuoted reports whether a parameter expansion in double quotes can
// still become several words: "$@", "${a[@]}", "${!prefix@}".
func splitsQuoted(p *syntax.ParamExp) bool {
	if p.Names == syntax.NamesPrefixWords {
		return true
	}
	if p.Param != nil && p.Param.Value == "@" && p.Index == nil {
		return true
	}
	if w, ok := p.Index.(*syntax.Word); ok && w.Lit() == "@" {
		return true
	}
	return false
}

// globState tracks unquoted, unescaped glob and brace expansion characters.
type globState struct {
	multi    bool
	bracket  bool // saw [
	brace    bool // saw {
	braceSep bool // saw , or .. after {
	afterDot bool // the previous byte was . after {
	braces   bool // saw a brace expansion
}

// reset notes an escaped byte, which ends a .. sequence.
func (g *globState) reset() { g.afterDot = false }

// byte notes an unquoted, unescaped byte of the word.
func (g *globState) byte(c byte) {
	dot := false
	switch c {
	case '*', '?':
		g.multi = true
	case '[':
		g.bracket = true
	case ']':
		g.multi = g.multi || g.bracket
	case '{':
		g.brace, g.braceSep = true, false
	case ',':
		g.braceSep = g.braceSep || g.brace
	case '.':
		g.braceSep = g.braceSep || (g.brace && g.afterDot)
		dot = g.brace
	case '}':
		if g.brace && g.braceSep {
			g.multi, g.braces = true, true
		}
	}
	g.afterDot = dot
}

// appendANSIC appends the value of a $'…' string, whose escapes bash
// decodes. Like bash, it ends the value at a NUL byte.
func appendANSIC(dst []byte, s string) []byte {
	start := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'a':
			dst = append(dst, '\a')
		case 'b':
			dst = append(dst, '\b')
		case 'e', 'E':
			dst = append(dst, 0x1b)
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '\\', '\'', '"', '?':
			dst = append(dst, c)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, j := 0, i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				n = n*8 + int(s[j]-'0')
			}
			dst = append(dst, byte(n))
			i = j - 1
		case 'x', 'u', 'U':
			digits := 2
			switch c {
			case 'u':
				digits = 4
			case 'U':
				digits = 8
			}
			n, j := 0, i+1
			for ; j < len(s) && j < i+1+digits && isHex(s[j]); j++ {
				n = n*16 + hexVal(s[j])
			}
			switch {
			case j == i+1:
				dst = append(dst, '\\', c)
			case c == 'x':
				dst = append(dst, byte(n))
			default:
				dst = utf8.AppendRune(dst, rune(n))
			}
			i = j - 1
		case 'c':
			if i+1 < len(s) {
				i++
				dst = append(dst, s[i]&0x1f)
			} else {
				dst = append(dst, '\\', c)
			}
		default:
			dst = append(dst, '\\', c)
		}
	}
	if j := strings.IndexByte(string(dst[start:]), 0); j >= 0 {
		dst = dst[:start+j]
	}
	return dst
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hexVal returns the value of the hexadecimal digit c.
func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
