package shell

import (
	"reflect"
	"strings"
	"testing"
)

// lit returns the Command that literal args make.
func lit(args ...string) Command {
	line := strings.Join(args, " ")
	return Command{Args: args, Line: line, Prefix: line}
}

// dyn returns the Dynamic Command that args make, with prefix.
func dyn(prefix string, args ...string) Command {
	return Command{Args: args, Line: strings.Join(args, " "), Dynamic: true, Prefix: prefix}
}

// splitCases are the table of TestSplit; FuzzSplit is seeded with them too.
var splitCases = []struct {
	name string
	line string
	want []Command
}{
	{
		name: "plain command",
		line: "git push origin main",
		want: []Command{lit("git", "push", "origin", "main")},
	},
	{
		name: "assignments wrappers path and quotes",
		line: "FOO=x  sudo -u root env A=1 /bin/rm   -rf '/'",
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "typical agent line",
		line: "cd /repo && FOO=1 git push origin feature/x",
		want: []Command{lit("cd", "/repo"), lit("git", "push", "origin", "feature/x")},
	},
	{
		name: "and list",
		line: "true && git push origin main",
		want: []Command{lit("true"), lit("git", "push", "origin", "main")},
	},
	{
		name: "or list semicolon and background",
		line: "false || rm -rf /; ls &",
		want: []Command{lit("false"), lit("rm", "-rf", "/"), lit("ls")},
	},
	{
		name: "newline separated commands",
		line: "cd /repo\ngit push origin main\n\nrm -rf build\n",
		want: []Command{lit("cd", "/repo"), lit("git", "push", "origin", "main"), lit("rm", "-rf", "build")},
	},
	{
		name: "pipeline keeps quoted argument whole",
		line: `cat x | psql -c "DROP TABLE users"`,
		want: []Command{lit("cat", "x"), lit("psql", "-c", "DROP TABLE users")},
	},
	{
		name: "pipeline with stderr",
		line: "make |& tee log",
		want: []Command{lit("make"), lit("tee", "log")},
	},
	{
		name: "command substitution in argument",
		line: "echo $(git push origin main)",
		want: []Command{dyn("echo ", "echo", "$(git push origin main)"), lit("git", "push", "origin", "main")},
	},
	{
		name: "backquotes",
		line: "echo `rm -rf /`",
		want: []Command{dyn("echo ", "echo", "`rm -rf /`"), lit("rm", "-rf", "/")},
	},
	{
		name: "substitution in assignment only",
		line: "X=$(rm -rf /)",
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "assignments only",
		line: "A=1 B=2",
		want: nil,
	},
	{
		name: "substitution in redirection",
		line: "echo hi > $(rm -rf /) 2>&1",
		want: []Command{lit("echo", "hi"), lit("rm", "-rf", "/")},
	},
	{
		name: "process substitution",
		line: "diff <(ls a) >(wc -l)",
		want: []Command{dyn("diff ", "diff", "<(ls a)", ">(wc -l)"), lit("ls", "a"), lit("wc", "-l")},
	},
	{
		name: "substitution in parameter default",
		line: "echo ${X:-$(rm -rf /)}",
		want: []Command{dyn("echo ", "echo", "${X:-$(rm -rf /)}"), lit("rm", "-rf", "/")},
	},
	{
		name: "substitution in arithmetic",
		line: "(( $(rm -rf /) ))",
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "arithmetic expansion is dynamic",
		line: "sleep $((1 + 2))",
		want: []Command{dyn("sleep ", "sleep", "$((1 + 2))")},
	},
	{
		name: "subshell and block",
		line: "(cd /x && rm -rf y); { git push origin main; }",
		want: []Command{lit("cd", "/x"), lit("rm", "-rf", "y"), lit("git", "push", "origin", "main")},
	},
	{
		name: "if body",
		line: "if true; then rm -rf /; fi",
		want: []Command{lit("true"), lit("rm", "-rf", "/")},
	},
	{
		name: "if elif else conditions and bodies",
		line: "if git diff --quiet; then :; elif rm -rf /; then echo; else terraform apply; fi",
		want: []Command{
			lit("git", "diff", "--quiet"), lit(":"), lit("rm", "-rf", "/"), lit("echo"), lit("terraform", "apply"),
		},
	},
	{
		name: "while loop",
		line: `while read f; do rm "$f"; done < list.txt`,
		want: []Command{lit("read", "f"), dyn("rm ", "rm", "$f")},
	},
	{
		name: "until loop",
		line: "until false; do sleep 1; done",
		want: []Command{lit("false"), lit("sleep", "1")},
	},
	{
		name: "for loop items and body",
		line: "for f in $(ls); do rm -rf $f; done",
		want: []Command{lit("ls"), dyn("rm -rf ", "rm", "-rf", "$f")},
	},
	{
		name: "case",
		line: "case $x in a) git push origin main;; *) rm -rf /;; esac",
		want: []Command{lit("git", "push", "origin", "main"), lit("rm", "-rf", "/")},
	},
	{
		name: "function body",
		line: "f() { rm -rf /; }; f",
		want: []Command{lit("rm", "-rf", "/"), lit("f")},
	},
	{
		name: "bash -c",
		line: `bash -c "git push origin main"`,
		want: []Command{lit("bash", "-c", "git push origin main"), lit("git", "push", "origin", "main")},
	},
	{
		name: "sh -c with sudo and glob",
		line: "sh -c 'sudo rm -rf /*'",
		want: []Command{lit("sh", "-c", "sudo rm -rf /*"), lit("rm", "-rf", "/*")},
	},
	{
		name: "shell options before -c",
		line: "bash -e -o pipefail -c 'rm -rf /'",
		want: []Command{lit("bash", "-e", "-o", "pipefail", "-c", "rm -rf /"), lit("rm", "-rf", "/")},
	},
	{
		name: "shell combined -lc",
		line: "/bin/zsh -lc 'git push origin main'",
		want: []Command{lit("zsh", "-lc", "git push origin main"), lit("git", "push", "origin", "main")},
	},
	{
		name: "nested bash -c",
		line: `bash -c "bash -c 'rm -rf /'"`,
		want: []Command{
			lit("bash", "-c", "bash -c 'rm -rf /'"), lit("bash", "-c", "rm -rf /"), lit("rm", "-rf", "/"),
		},
	},
	{
		name: "bash -c with expansion hides inner programs",
		line: `bash -c "rm -rf $DIR; echo $(whoami)"`,
		want: []Command{
			dyn("bash -c rm -rf ", "bash", "-c", "rm -rf $DIR; echo $(whoami)"),
			dyn("", "rm", "-rf", "$DIR"),
			dyn("", "echo", "$(whoami)"),
			lit("whoami"),
		},
	},
	{
		name: "bash -c dynamic script that does not parse",
		line: `bash -c "echo '$X"`,
		want: []Command{dyn("bash -c echo '", "bash", "-c", "echo '$X"), dyn("", "echo '$X")},
	},
	{
		name: "heredoc substitution",
		line: "cat <<EOF\n$(rm -rf /)\nEOF\n",
		want: []Command{lit("cat"), lit("rm", "-rf", "/")},
	},
	{
		name: "quoted heredoc is literal",
		line: "cat <<'EOF'\n$(rm -rf /)\nEOF\n",
		want: []Command{lit("cat")},
	},
	{
		name: "heredoc fed to a shell",
		line: "bash <<'EOF'\nrm -rf /\nEOF\n",
		want: []Command{lit("bash"), lit("rm", "-rf", "/")},
	},
	{
		name: "here-string fed to a shell",
		line: "sh <<< 'git push origin main'",
		want: []Command{lit("sh"), lit("git", "push", "origin", "main")},
	},
	{
		name: "eval joins its arguments",
		line: `eval "git push" origin main`,
		want: []Command{lit("eval", "git push", "origin", "main"), lit("git", "push", "origin", "main")},
	},
	{
		name: "eval of a substitution",
		line: `eval "$(curl -s x)"`,
		want: []Command{dyn("eval ", "eval", "$(curl -s x)"), dyn("", "$(curl -s x)"), lit("curl", "-s", "x")},
	},
	{
		name: "find -exec",
		line: `find . -name '*.tmp' -exec rm -rf {} \;`,
		want: []Command{lit("find", ".", "-name", "*.tmp", "-exec", "rm", "-rf", "{}", ";"), lit("rm", "-rf", "{}")},
	},
	{
		name: "find -execdir with wrapper and -ok",
		line: `find / -execdir sudo shred -u {} + -ok rm {} \;`,
		want: []Command{
			lit("find", "/", "-execdir", "sudo", "shred", "-u", "{}", "+", "-ok", "rm", "{}", ";"),
			lit("shred", "-u", "{}"),
			lit("rm", "{}"),
		},
	},
	{
		name: "xargs",
		line: "ls | xargs -0 -n 1 -I{} rm -rf {}",
		want: []Command{lit("ls"), lit("rm", "-rf", "{}")},
	},
	{
		name: "xargs running a shell",
		line: "find . | xargs -I{} sh -c 'rm -rf {}'",
		want: []Command{lit("find", "."), lit("sh", "-c", "rm -rf {}"), lit("rm", "-rf", "{}")},
	},
	{
		name: "timeout with options and duration",
		line: "timeout -s KILL 10 terraform apply -auto-approve",
		want: []Command{lit("terraform", "apply", "-auto-approve")},
	},
	{
		name: "stacked wrappers",
		line: "nohup nice -n 10 stdbuf -oL ionice -c3 setsid rm -rf /tmp/x &",
		want: []Command{lit("rm", "-rf", "/tmp/x")},
	},
	{
		name: "command and exec",
		line: "command -p exec -a foo /usr/bin/git push",
		want: []Command{lit("git", "push")},
	},
	{
		name: "time keyword and time program",
		line: "time /usr/bin/time -f %e git push origin main",
		want: []Command{lit("git", "push", "origin", "main")},
	},
	{
		name: "env -S string",
		line: "env -i -S 'A=1 rm -rf /' extra",
		want: []Command{lit("rm", "-rf", "/", "extra")},
	},
	{
		name: "doas",
		line: "doas -u root rm -rf /",
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "sudo with -- and long options",
		line: "sudo -E --user=root --chdir /tmp -- /bin/rm -rf /",
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "builtin and busybox",
		line: "builtin command busybox sh -c 'rm -rf /'",
		want: []Command{lit("sh", "-c", "rm -rf /"), lit("rm", "-rf", "/")},
	},
	{
		name: "wrapper without command is reported",
		line: "sudo -v; env",
		want: []Command{lit("sudo", "-v"), lit("env")},
	},
	{
		name: "watch runs its arguments with sh -c",
		line: "watch -n 5 'ls; rm -rf /'",
		want: []Command{lit("ls"), lit("rm", "-rf", "/")},
	},
	{
		name: "watch -x",
		line: "watch -x -n 1 git status",
		want: []Command{lit("git", "status")},
	},
	{
		name: "su -c",
		line: "su root -c 'rm -rf /'",
		want: []Command{lit("su", "root", "-c", "rm -rf /"), lit("rm", "-rf", "/")},
	},
	{
		name: "runuser -u runs a command",
		line: "runuser -u deploy -- kubectl delete ns prod",
		want: []Command{
			lit("runuser", "-u", "deploy", "--", "kubectl", "delete", "ns", "prod"),
			lit("kubectl", "delete", "ns", "prod"),
		},
	},
	{
		name: "ANSI-C strings",
		line: `$'\x72\x6d' -rf $'\057'`,
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "escapes",
		line: `\rm -r\f /; 'git' "push"  origin   \m\a\i\n`,
		want: []Command{lit("rm", "-rf", "/"), lit("git", "push", "origin", "main")},
	},
	{
		name: "line continuation",
		line: "git push \\\n  origin main",
		want: []Command{lit("git", "push", "origin", "main")},
	},
	{
		name: "dynamic argument",
		line: "git push origin $BRANCH",
		want: []Command{dyn("git push origin ", "git", "push", "origin", "$BRANCH")},
	},
	{
		name: "dynamic part of a word",
		line: "git push origin --branch=${B}",
		want: []Command{dyn("git push origin --branch=", "git", "push", "origin", "--branch=${B}")},
	},
	{
		name: "dynamic program",
		line: "$GIT push",
		want: []Command{dyn("", "$GIT", "push")},
	},
	{
		name: "program path with expansion",
		line: `"$HOME"/bin/rm -rf /`,
		want: []Command{dyn("", "rm", "-rf", "/")},
	},
	{
		name: "program after sudo is dynamic",
		line: "sudo $CMD",
		want: []Command{dyn("", "$CMD")},
	},
	{
		name: "unquoted expansion consumed by wrapper",
		line: "sudo -u $U rm -rf /",
		want: []Command{dyn("", "rm", "-rf", "/")},
	},
	{
		name: "script of a command with hidden program",
		line: "timeout $T bash -c 'rm -rf /'",
		want: []Command{dyn("", "bash", "-c", "rm -rf /"), dyn("", "rm", "-rf", "/")},
	},
	{
		name: "quoted expansion consumed by wrapper",
		line: `sudo -u "$U" rm -rf /`,
		want: []Command{lit("rm", "-rf", "/")},
	},
	{
		name: "glob in program",
		line: "/???/r? -rf /",
		want: []Command{dyn("", "r?", "-rf", "/")},
	},
	{
		name: "brace expansion in program",
		line: "{rm,-rf,/}",
		want: []Command{dyn("", "{rm,-rf,/}")},
	},
	{
		name: "brace expansion consumed by wrapper",
		line: "timeout {1,rm} -rf /",
		want: []Command{dyn("", "-rf", "/")},
	},
	{
		name: "globs and tilde in arguments are literal",
		line: "rm -rf *.txt ~/tmp/a",
		want: []Command{lit("rm", "-rf", "*.txt", "~/tmp/a")},
	},
	{
		name: "brace expansion in an argument is dynamic",
		line: "rm -rf *.txt ~/tmp/{a,b}",
		want: []Command{dyn("rm -rf *.txt ", "rm", "-rf", "*.txt", "~/tmp/{a,b}")},
	},
	{
		name: "brace expansion cannot hide main",
		line: "git push origin {main,}",
		want: []Command{dyn("git push origin ", "git", "push", "origin", "{main,}")},
	},
	{
		name: "quoted braces are literal",
		line: "echo '{a,b}'",
		want: []Command{lit("echo", "{a,b}")},
	},
	{
		name: "white space inside quoted words is squeezed in Line",
		line: "psql -c \"DROP \t  TABLE\n users\"",
		want: []Command{{Args: []string{"psql", "-c", "DROP \t  TABLE\n users"}, Line: "psql -c DROP TABLE users", Prefix: "psql -c DROP TABLE users"}},
	},
	{
		name: "test clauses are not commands",
		line: "[[ -f x ]] && rm -rf /; [ -f y ] && rm y",
		want: []Command{lit("rm", "-rf", "/"), lit("[", "-f", "y", "]"), lit("rm", "y")},
	},
	{
		name: "substitution in test clause and select loop",
		line: "[[ -n $(rm -rf /) ]]; select x in a b; do git push origin $x; done",
		want: []Command{lit("rm", "-rf", "/"), dyn("git push origin ", "git", "push", "origin", "$x")},
	},
	{
		name: "declarations",
		line: "export A=$(id) B=2; local -r x",
		want: []Command{dyn("export A=", "export", "A=$(id)", "B=2"), lit("id"), lit("local", "-r", "x")},
	},
	{
		name: "array assignment substitutions",
		line: "a=(1 $(rm -rf /)) b[$(id)]=2",
		want: []Command{lit("rm", "-rf", "/"), lit("id")},
	},
	{
		name: "negation and coproc",
		line: "! rm -rf / & coproc git push origin main",
		want: []Command{lit("rm", "-rf", "/"), lit("git", "push", "origin", "main")},
	},
	{
		name: "comments are ignored",
		line: "ls # ; rm -rf /",
		want: []Command{lit("ls")},
	},
	{
		name: "ssh remote command is not split",
		line: "ssh prod 'rm -rf /var/www'",
		want: []Command{lit("ssh", "prod", "rm -rf /var/www")},
	},
}

func TestSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range splitCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Split(tc.line)
			if err != nil {
				t.Fatalf("Split(%q) returned error: %v", tc.line, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Split(%q)\n got: %s\nwant: %s", tc.line, format(got), format(tc.want))
			}
		})
	}
}

// format prints commands one a line for failure messages.
func format(cmds []Command) string {
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString("\n  ")
		b.WriteString(strings.Join([]string{
			"Args=" + strings.Join(quoteAll(c.Args), ","),
			"Line=" + quote(c.Line),
			"Dynamic=" + map[bool]string{true: "true", false: "false"}[c.Dynamic],
			"Prefix=" + quote(c.Prefix),
		}, " "))
	}
	if len(cmds) == 0 {
		b.WriteString("(none)")
	}
	return b.String()
}

func quote(s string) string { return `"` + s + `"` }

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return out
}

// nestBash wraps script in n levels of bash -c "…".
func nestBash(n int, script string) string {
	for range n {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
		script = `bash -c "` + r.Replace(script) + `"`
	}
	return script
}

// nestSubst wraps script in n levels of echo $(…).
func nestSubst(n int, script string) string {
	for range n {
		script = "echo $(" + script + ")"
	}
	return script
}

func TestSplitLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		wantCount int
		wantLast  string
	}{
		{name: "bash -c nested 8 times", line: nestBash(8, "rm -rf /"), wantCount: 9, wantLast: "rm -rf /"},
		{name: "substitutions nested 8 times", line: nestSubst(8, "rm -rf /"), wantCount: 9, wantLast: "rm -rf /"},
		{name: "1000 commands", line: strings.Repeat("true;", 1000), wantCount: 1000, wantLast: "true"},
		{name: "longest line", line: "echo " + strings.Repeat("a", MaxLineBytes-5), wantCount: 1, wantLast: "echo " + strings.Repeat("a", MaxLineBytes-5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Split(tc.line)
			if err != nil {
				t.Fatalf("Split returned error: %v", err)
			}
			if len(got) != tc.wantCount {
				t.Fatalf("Split returned %d commands, want %d", len(got), tc.wantCount)
			}
			if last := got[len(got)-1]; last.Line != tc.wantLast || last.Dynamic {
				t.Errorf("last command = %+v, want literal %q", last, tc.wantLast)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{
			name:    "too long",
			line:    strings.Repeat("a", MaxLineBytes+1),
			wantErr: "command line is 65537 bytes, longer than the limit of 65536 bytes",
		},
		{
			name:    "invalid UTF-8",
			line:    "echo \xff",
			wantErr: "command line is not valid UTF-8 at byte 5",
		},
		{
			name:    "unterminated quote",
			line:    `echo "unterminated`,
			wantErr: "parse command: 1:6: reached EOF without closing quote `\"`",
		},
		{
			name:    "unterminated quote in bash -c script",
			line:    `bash -c 'echo "'`,
			wantErr: "parse command: 1:9: bash -c script: 1:6: reached EOF without closing quote `\"`",
		},
		{
			name:    "syntax error in nested eval",
			line:    "true\nsudo bash -c 'eval \"if true\"'",
			wantErr: "parse command: 2:14: bash -c script: 1:6: eval script: 1:1: `if <cond>` must be followed by `then`",
		},
		{
			name:    "syntax error in env -S string",
			line:    `env -S 'rm "' x`,
			wantErr: "parse command: 1:8: env -S string: 1:4: reached EOF without closing quote `\"`",
		},
		{
			name:    "bash -c nested 9 times",
			line:    nestBash(9, "rm -rf /"),
			wantErr: "command nesting is deeper than 8 levels",
		},
		{
			name:    "substitutions nested 9 times",
			line:    nestSubst(9, "rm -rf /"),
			wantErr: "command nesting is deeper than 8 levels",
		},
		{
			name:    "eval nested 9 times",
			line:    strings.Repeat("eval ", 10) + "rm",
			wantErr: "command nesting is deeper than 8 levels",
		},
		{
			name:    "too many commands",
			line:    strings.Repeat("true;", 1001),
			wantErr: "command line runs more than 1000 commands",
		},
		{
			name:    "too many commands in nested script",
			line:    `bash -c "` + strings.Repeat("true;", 1001) + `"`,
			wantErr: "command line runs more than 1000 commands",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Split(tc.line)
			if err == nil {
				t.Fatalf("Split returned %d commands and no error, want error %q", len(got), tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Split error = %q, want %q", err.Error(), tc.wantErr)
			}
			if got != nil {
				t.Errorf("Split returned %d commands with the error, want none", len(got))
			}
		})
	}
}

// BenchmarkSplit measures a typical agent command line.
//
// Recorded on the shared 2-core development machine:
//
//	BenchmarkSplit-2   2600 ns/op   6744 B/op   33 allocs/op
func BenchmarkSplit(b *testing.B) {
	const line = "cd /repo && FOO=1 git push origin feature/x"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(line); err != nil {
			b.Fatal(err)
		}
	}
}
