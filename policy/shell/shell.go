package shell

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// MaxLineBytes is the longest command line Split accepts.
const MaxLineBytes = 64 << 10

const (
	// maxDepth bounds how deeply scripts (bash -c, eval, watch, su -c, a
	// heredoc fed to a shell), substitutions and find -exec commands nest.
	maxDepth = 8
	// maxCommands bounds how many commands one line may yield.
	maxCommands = 1000
)

// Command is one simple command that a shell line would run, normalized for matching.
type Command struct {
	// Args are the normalized words; Args[0] is the program, reduced to its
	// base name, with wrappers such as sudo and env removed.
	Args []string
	// Line is the Args joined with single spaces, with every run of white
	// space inside a word (quoted text such as "DROP   TABLE") also reduced
	// to one space, so that patterns need not guess the spacing.
	Line string
	// Dynamic reports that the command depends on something Split cannot
	// know: a word contains a parameter expansion ($VAR, ${VAR}), a command
	// or process substitution ($(…), `…`, <(…)), an arithmetic expansion or
	// an unquoted brace expansion ({main,}, which bash turns into other
	// words), or the program itself is hidden (see Prefix). Globs (*.txt)
	// and ~ in arguments are kept as written and are not dynamic.
	Dynamic bool
	// Prefix is, for a Dynamic command, the literal text of Line before the
	// first expansion, and "" when the program itself is not known: its word
	// has an expansion or an unquoted glob or brace expansion, a word that a
	// wrapper consumed could expand to several words (sudo -u $U cmd), or the
	// command comes from a script string that has an expansion
	// (bash -c "rm $X"). Prefix equals Line when the command is not Dynamic.
	Prefix string
}

// Split parses line as bash and returns every simple command it would run, in source order.
//
// A command is reported before the commands nested in its words (command
// substitutions, bash -c scripts, find -exec commands). The package
// documentation lists exactly what Split sees and what it cannot.
func Split(line string) (cmds []Command, err error) {
	if len(line) > MaxLineBytes {
		return nil, fmt.Errorf("command line is %d bytes, longer than the limit of %d bytes", len(line), MaxLineBytes)
	}
	if !utf8.ValidString(line) {
		return nil, fmt.Errorf("command line is not valid UTF-8 at byte %d", invalidUTF8(line))
	}
	defer func() {
		if r := recover(); r != nil {
			cmds, err = nil, fmt.Errorf("split command: internal error: %v", r)
		}
	}()
	s := splitter{parser: syntax.NewParser(syntax.Variant(syntax.LangBash))}
	if err := s.parse(line, &scope{src: line}); err != nil {
		var le *limitError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, fmt.Errorf("parse command: %w", err)
	}
	return s.out, nil
}

// invalidUTF8 returns the offset of the first byte of s that is not valid UTF-8.
func invalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// limitError reports that a line needs more work than Split allows. It is
// returned as is, without the positions of the scripts it was found in.
type limitError struct{ msg string }

// Error returns the message of e.
func (e *limitError) Error() string { return e.msg }

var (
	errTooDeep = &limitError{msg: fmt.Sprintf("command nesting is deeper than %d levels", maxDepth)}
	errTooMany = &limitError{msg: fmt.Sprintf("command line runs more than %d commands", maxCommands)}
)

// splitter collects the commands of one Split call.
type splitter struct {
	parser *syntax.Parser
	out    []Command
	err    error // first error; once set, the walk stops
}

// scope is the source being walked and what holds for every command in it.
type scope struct {
	src    string // text that node positions refer to
	depth  int    // nesting level of src and of the substitutions being walked
	hidden bool   // src came from a script string with an expansion: every command hides its program
	skip   []span // parts of src rendered from expansions; substitutions there were already walked
}

// child returns a scope one level deeper than sc.
func (sc *scope) child() *scope {
	c := *sc
	c.depth++
	return &c
}

// skips reports whether offset lies in text rendered from an outer expansion.
func (sc *scope) skips(offset uint) bool {
	o := int(offset)
	i := sort.Search(len(sc.skip), func(i int) bool { return sc.skip[i].end > o })
	return i < len(sc.skip) && sc.skip[i].start <= o
}

// fail records err unless an earlier error was recorded; the walk then stops.
func (s *splitter) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// parse parses src as bash and walks it in sc. It returns the parser's error
// or the first error found while walking.
func (s *splitter) parse(src string, sc *scope) error {
	if sc.depth > maxDepth {
		return errTooDeep
	}
	f, err := s.parser.Parse(strings.NewReader(src), "")
	if err != nil {
		return err
	}
	s.walk(f, sc)
	return s.err
}

// script splits the text of w, a script that the command named name runs,
// one level below sc. Commands from a script with an expansion, or from a
// script of a command whose program is hidden, hide their program.
func (s *splitter) script(name string, w word, sc *scope, hidden bool) {
	if s.err != nil {
		return
	}
	c := sc.child()
	c.src = w.text
	c.skip = w.spans
	c.hidden = sc.hidden || hidden || w.dynamic()
	err := s.parse(w.text, c)
	if err == nil {
		return
	}
	s.err = nil
	var le *limitError
	switch {
	case errors.As(err, &le):
		s.err = err
	case c.hidden:
		// The text is only an approximation of what will run, so a parse
		// error says nothing; report the whole script as unknown.
		s.emit([]word{{text: w.text}}, true)
	default:
		s.err = fmt.Errorf("%s: %s script: %w", w.pos, name, err)
	}
}

// walk reports the commands of node and everything nested in it.
func (s *splitter) walk(node syntax.Node, sc *scope) {
	syntax.Walk(node, func(n syntax.Node) bool {
		if s.err != nil {
			return false
		}
		switch n := n.(type) {
		case *syntax.Stmt:
			switch c := n.Cmd.(type) {
			case *syntax.CallExpr:
				if len(c.Args) > 0 {
					s.call(c, n.Redirs, sc)
				}
			case *syntax.DeclClause:
				s.decl(c, sc)
			}
		case *syntax.CmdSubst:
			s.nested(n, n.Stmts, sc)
			return false
		case *syntax.ProcSubst:
			s.nested(n, n.Stmts, sc)
			return false
		}
		return true
	})
}

// nested walks the statements of a command or process substitution.
func (s *splitter) nested(n syntax.Node, stmts []*syntax.Stmt, sc *scope) {
	if sc.skips(n.Pos().Offset()) {
		return
	}
	c := sc.child()
	if c.depth > maxDepth {
		s.fail(errTooDeep)
		return
	}
	for _, st := range stmts {
		s.walk(st, c)
	}
}

// call reports the simple command c, whose statement has the redirections redirs.
func (s *splitter) call(c *syntax.CallExpr, redirs []*syntax.Redirect, sc *scope) {
	words := make([]word, len(c.Args))
	for i, w := range c.Args {
		words[i] = render(w, sc.src, litUnquoted)
	}
	s.run(words, redirs, sc, false)
}

// decl reports a declaration builtin such as export or local. Its
// assignments are kept as NAME=VALUE words.
func (s *splitter) decl(d *syntax.DeclClause, sc *scope) {
	words := make([]word, 0, 1+len(d.Args))
	words = append(words, word{text: d.Variant.Value, pos: d.Variant.Pos()})
	for _, a := range d.Args {
		words = append(words, renderAssign(a, sc.src))
	}
	s.emit(words, sc.hidden)
}

// emit appends the command made of words. hidden means its program is not known.
func (s *splitter) emit(words []word, hidden bool) {
	if s.err != nil {
		return
	}
	if len(s.out) >= maxCommands {
		s.fail(errTooMany)
		return
	}
	args := make([]string, len(words))
	first, off := -1, 0
	for i, w := range words {
		args[i] = w.text
		if first < 0 && w.brace {
			first = off
		}
		if first < 0 && len(w.spans) > 0 {
			first = off + w.spans[0].start
		}
		off += len(w.text) + 1
	}
	line := strings.Join(args, " ")
	cmd := Command{Args: args, Line: squeeze(line), Dynamic: hidden || first >= 0}
	switch {
	case hidden:
		cmd.Prefix = ""
	case first >= 0:
		cmd.Prefix = squeeze(line[:first])
	default:
		cmd.Prefix = cmd.Line
	}
	s.out = append(s.out, cmd)
}

// squeeze reduces every run of white space in s to one space. The squeezed
// form of a prefix of s is a prefix of the squeezed s.
func squeeze(s string) string {
	if !strings.ContainsAny(s, "\t\n\v\f\r") && !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// Quote returns s as one shell word: unchanged when it is made only of
// characters no shell reads specially, otherwise in single quotes.
func Quote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		// ANSI-C quoting spells control characters out, so that none is
		// rewritten on the way (the parser reads \r\n as \n).
		var b strings.Builder
		b.WriteString("$'")
		for _, r := range s {
			switch {
			case r == '\\' || r == '\'':
				b.WriteByte('\\')
				b.WriteRune(r)
			case unicode.IsControl(r) && r < 0x80:
				fmt.Fprintf(&b, "\\x%02x", r)
			case unicode.IsControl(r):
				fmt.Fprintf(&b, "\\u%04x", r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('\'')
		return b.String()
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
