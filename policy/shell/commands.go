package shell

import (
	"fmt"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// options describes the options of a program that Split looks through.
type options struct {
	short string   // option letters that take a value: -u root, -uroot
	long  []string // long options that take a value: --user root, --user=root
}

// wrapper is a program that runs the command in its arguments.
type wrapper struct {
	options
	operands int // operands before the command, such as the DURATION of timeout
}

// wrappers are the programs Split strips from the front of a command. env
// (NAME=VALUE words and -S) and watch (a script unless -x) get extra handling
// in strip.
var wrappers = map[string]wrapper{
	"sudo": {options: options{short: "aCcDghpRrTtUu", long: []string{
		"auth-type", "chdir", "chroot", "close-from", "command-timeout", "group",
		"host", "login-class", "other-user", "prompt", "role", "type", "user"}}},
	"doas":    {options: options{short: "aCu"}},
	"env":     {options: options{short: "aCLPSu", long: []string{"argv0", "chdir", "split-string", "unset"}}},
	"command": {},
	"builtin": {},
	"exec":    {options: options{short: "a"}},
	"nohup":   {},
	"time":    {options: options{short: "fo", long: []string{"format", "output"}}},
	"nice":    {options: options{short: "n", long: []string{"adjustment"}}},
	"ionice":  {options: options{short: "cnPpu", long: []string{"class", "classdata", "pgid", "pid", "uid"}}},
	"setsid":  {},
	"timeout": {options: options{short: "ks", long: []string{"kill-after", "signal"}}, operands: 1},
	"stdbuf":  {options: options{short: "eio", long: []string{"error", "input", "output"}}},
	"xargs": {options: options{short: "adEILnPs", long: []string{
		"arg-file", "delimiter", "max-args", "max-chars", "max-procs", "process-slot-var"}}},
	"watch":   {options: options{short: "nq", long: []string{"equexit", "interval"}}},
	"busybox": {},
}

// shells are the programs whose -c option runs a script.
var shells = map[string]bool{
	"bash": true, "sh": true, "zsh": true, "dash": true, "ksh": true,
	"ash": true, "mksh": true, "rbash": true,
}

// suOptions are the options of su and runuser; -c runs a script and
// runuser -u runs a command.
var suOptions = options{short: "cgGsuw", long: []string{
	"command", "group", "session-command", "shell", "supp-group", "user", "whitelist-environment"}}

// scanOptions reads the options of a program in words[i:], stopping at the
// first operand or after --, and returns the index of that operand. It calls
// visit, if not nil, with each option's name (a letter, or a long name with
// its leading --) and value; it stops early, after that option, when visit
// returns false.
func scanOptions(words []word, i int, o options, visit func(name string, val word) bool) int {
	for i < len(words) {
		w := words[i]
		t := w.text
		if len(t) < 2 || t[0] != '-' || w.dyn() == 0 {
			return i
		}
		i++
		if t == "--" {
			return i
		}
		if t[1] == '-' {
			name, _, attached := strings.Cut(t[2:], "=")
			var val word
			switch {
			case attached:
				val = w.from(3 + len(name))
			case takesValue(o.long, name) && i < len(words):
				val = words[i]
				i++
			}
			if visit != nil && !visit("--"+name, val) {
				return i
			}
			continue
		}
		for j := 1; j < len(t); j++ {
			c := t[j]
			var val word
			hasVal := strings.IndexByte(o.short, c) >= 0
			switch {
			case hasVal && j+1 < len(t):
				val = w.from(j + 1)
			case hasVal && i < len(words):
				val = words[i]
				i++
			}
			if visit != nil && !visit(t[j:j+1], val) {
				return i
			}
			if hasVal {
				break
			}
		}
	}
	return i
}

// takesValue reports whether the long option name, possibly abbreviated as
// getopt_long allows, is one of those in long.
func takesValue(long []string, name string) bool {
	if name == "" {
		return false
	}
	for _, l := range long {
		if strings.HasPrefix(l, name) {
			return true
		}
	}
	return false
}

// programName returns the base name of a program word when it is literal.
func programName(w word) (string, bool) {
	if w.dynamic() || w.multi {
		return "", false
	}
	return w.base().text, true
}

// run strips wrappers from words, reports the command that remains and then
// the commands it runs in turn. redirs are the redirections of its statement;
// hidden means a word already consumed could hide the program.
func (s *splitter) run(words []word, redirs []*syntax.Redirect, sc *scope, hidden bool) {
	hidden = hidden || sc.hidden
	for len(words) > 0 && s.err == nil {
		name, ok := programName(words[0])
		if !ok {
			break
		}
		rest, consumedMulti, isWrapper, script := s.strip(name, words)
		if !isWrapper || s.err != nil {
			break
		}
		if script {
			// watch without -x runs its joined arguments with sh -c.
			s.script("watch", join(rest), sc, hidden || consumedMulti)
			return
		}
		if len(rest) == 0 {
			break // a wrapper with no command, such as sudo -v: report it
		}
		words, hidden = rest, hidden || consumedMulti
	}
	if len(words) == 0 || s.err != nil {
		return
	}
	prog := words[0]
	hidden = hidden || prog.dynamic() || prog.multi
	words[0] = prog.base()
	s.emit(words, hidden)

	name, ok := programName(prog)
	if !ok {
		return
	}
	switch {
	case shells[name]:
		s.shell(name, words, redirs, sc, hidden)
	case name == "eval" && len(words) > 1:
		s.script("eval", join(words[1:]), sc, hidden)
	case name == "su" || name == "runuser":
		s.su(name, words, sc, hidden)
	case name == "find":
		s.find(words, sc, hidden)
	}
}

// strip removes the wrapper name from the front of words. It returns the
// words of the wrapped command, whether a consumed word could expand to
// several words, whether name is a wrapper at all, and whether the rest is a
// script rather than a command (watch without -x).
func (s *splitter) strip(name string, words []word) (rest []word, multi, ok, script bool) {
	wr, ok := wrappers[name]
	if !ok {
		return nil, false, false, false
	}
	var i int
	switch name {
	case "env":
		i = s.env(&words)
	case "watch":
		exec := false
		i = scanOptions(words, 1, wr.options, func(name string, _ word) bool {
			exec = exec || name == "x" || (len(name) > 2 && strings.HasPrefix("--exec", name))
			return true
		})
		script = !exec
	default:
		i = scanOptions(words, 1, wr.options, nil)
	}
	i = min(i+wr.operands, len(words))
	for _, w := range words[1:i] {
		multi = multi || w.multi
	}
	if script && i == len(words) {
		script = false // plain watch: nothing to run
	}
	return words[i:], multi, true, script
}

// env reads the options and NAME=VALUE words of env in *words and returns
// the index of the command. The words of a -S string replace the option, as
// GNU env does.
func (s *splitter) env(words *[]word) int {
	ws := *words
	for splits := 0; ; splits++ {
		var split word
		found := false
		i := scanOptions(ws, 1, wrappers["env"].options, func(name string, val word) bool {
			if name == "S" || (len(name) > 2 && strings.HasPrefix("--split-string", name)) {
				split, found = val, true
				return false
			}
			return true
		})
		if !found {
			for i < len(ws) && (ws[i].text == "-" || ws[i].hasLiteral('=')) {
				i++
			}
			*words = ws
			return i
		}
		if splits == maxDepth {
			s.fail(errTooDeep)
			*words = ws
			return len(ws)
		}
		parts, err := s.splitWords(split)
		if err != nil {
			s.fail(fmt.Errorf("%s: env -S string: %w", split.pos, err))
			*words = ws
			return len(ws)
		}
		next := make([]word, 0, 1+len(parts)+len(ws)-i)
		next = append(next, ws[0])
		next = append(next, parts...)
		ws = append(next, ws[i:]...)
	}
}

// splitWords splits the value of env -S into words. A value with an
// expansion yields words that may all be wrong, so each is marked multi.
func (s *splitter) splitWords(w word) ([]word, error) {
	var out []word
	for sw, err := range s.parser.WordsSeq(strings.NewReader(w.text)) {
		if err != nil {
			return nil, err
		}
		r := render(sw, w.text, litUnquoted)
		r.pos = w.pos
		r.multi = r.multi || w.dynamic() || w.multi
		out = append(out, r)
	}
	return out, nil
}

// shell splits the script that a shell runs: the operand of -c, or a heredoc
// or here-string on its standard input when it has no script file.
func (s *splitter) shell(name string, words []word, redirs []*syntax.Redirect, sc *scope, hidden bool) {
	i, cflag, sflag := 1, false, false
options:
	for i < len(words) {
		w := words[i]
		t := w.text
		if len(t) < 2 || (t[0] != '-' && t[0] != '+') || w.dyn() == 0 {
			break
		}
		i++
		switch {
		case t == "--" || t == "-":
			break options
		case strings.HasPrefix(t, "--"):
			if t == "--rcfile" || t == "--init-file" {
				i++
			}
			continue
		}
		for j := 1; j < len(t); j++ {
			switch t[j] {
			case 'c':
				cflag = cflag || t[0] == '-'
			case 's':
				sflag = sflag || t[0] == '-'
			case 'o', 'O':
				i++
			}
		}
	}
	switch {
	case cflag && i < len(words):
		s.script(name+" -c", words[i], sc, hidden)
	case !cflag && (sflag || i >= len(words)):
		if body, ok := stdinScript(redirs, sc.src); ok {
			s.script(name+" stdin", body, sc, hidden)
		}
	}
}

// stdinScript returns the text of the last heredoc or here-string that
// redirs feed to standard input.
func stdinScript(redirs []*syntax.Redirect, src string) (word, bool) {
	var body word
	found := false
	for _, r := range redirs {
		if r.N != nil && r.N.Value != "0" {
			continue
		}
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			if r.Hdoc == nil {
				body, found = word{pos: r.OpPos}, true
				continue
			}
			mode := litHeredoc
			if quotedDelimiter(r.Word) {
				mode = litRaw
			}
			body, found = render(r.Hdoc, src, mode), true
			body.multi = false
		case syntax.WordHdoc:
			body, found = render(r.Word, src, litUnquoted), true
		case syntax.RdrIn, syntax.RdrInOut:
			found = false // a file replaces any earlier heredoc
		}
	}
	return body, found
}

// quotedDelimiter reports whether a heredoc delimiter is quoted, which makes
// the heredoc body literal.
func quotedDelimiter(w *syntax.Word) bool {
	for _, p := range w.Parts {
		l, ok := p.(*syntax.Lit)
		if !ok || strings.Contains(l.Value, `\`) {
			return true
		}
	}
	return false
}

// su splits the script of su -c or runuser -c. Their options may follow the
// user name. runuser -u USER runs the command after its options directly.
func (s *splitter) su(name string, words []word, sc *scope, hidden bool) {
	user := false
	for i := 1; i < len(words); i++ {
		var script word
		found := false
		i = scanOptions(words, i, suOptions, func(opt string, val word) bool {
			switch opt {
			case "c", "--command", "--session-command":
				script, found = val, true
			case "u", "--user":
				user = true
			}
			return true
		})
		if found {
			s.script(name+" -c", script, sc, hidden)
			return
		}
		if user && name == "runuser" && i < len(words) {
			c := sc.child()
			if c.depth > maxDepth {
				s.fail(errTooDeep)
				return
			}
			s.run(slices.Clone(words[i:]), nil, c, hidden)
			return
		}
	}
}

// find reports the commands of find's -exec, -execdir, -ok and -okdir
// actions, each ended by ; or {} +.
func (s *splitter) find(words []word, sc *scope, hidden bool) {
	for i := 1; i < len(words) && s.err == nil; i++ {
		switch words[i].text {
		case "-exec", "-execdir", "-ok", "-okdir":
		default:
			continue
		}
		j := i + 1
		for j < len(words) && words[j].text != ";" && (words[j].text != "+" || words[j-1].text != "{}") {
			j++
		}
		if j > i+1 {
			c := sc.child()
			if c.depth > maxDepth {
				s.fail(errTooDeep)
				return
			}
			s.run(slices.Clone(words[i+1:j]), nil, c, hidden)
		}
		i = j
	}
}
