// Package shell splits a shell command line, such as the command of Claude
// Code's Bash tool, into the simple commands it would run, normalized so that
// policy patterns like "rm -rf /*" or "git push * main" match them however
// the line is written.
//
// Split parses the line with the bash parser of mvdan.cc/sh/v3/syntax and
// reports, in source order, each simple command of the line and of everything
// nested in it. A command is reported before the commands nested in its words.
//
// # What Split sees
//
// Every command the shell itself would run: commands joined by &&, ||, ;, &,
// newlines and pipes (| and |&); subshells ( … ) and blocks { …; }; the
// conditions and bodies of if, while, until, for, select and case; function
// bodies, where they are defined (f() { rm -rf /; }; f reports rm -rf /);
// command substitutions $(…) and `…` and process substitutions <(…) and >(…)
// wherever they appear: in arguments, in assignments (X=$(cmd) alone reports
// cmd), in redirections, in unquoted heredocs, in ${VAR:-…}, in [[ … ]] and in
// arithmetic. The declaration builtins export, declare, local, readonly,
// typeset and nameref are reported with their NAME=VALUE words.
//
// Each command is normalized:
//   - leading assignments (FOO=1 cmd) and redirections (> out, 2>&1) are dropped;
//   - quotes and escapes are removed: 'git' "push" \m\a\i\n is git push main,
//     and $'…' strings are decoded ($'\x72\x6d' is rm);
//   - these wrappers are stripped from the front, repeatedly, with their
//     options and option values: sudo, doas, env (options, NAME=VALUE words,
//     and the words of -S STRING), command, builtin, exec, nohup, time, nice,
//     ionice, setsid, timeout (options and DURATION), stdbuf, xargs, busybox
//     and watch -x; a wrapper with no command after it (sudo -v) is reported
//     itself;
//   - the program is reduced to its base name: /usr/bin/git is git.
//
// Split also reports the commands that these commands run:
//   - the script of bash, sh, zsh, dash, ksh, ash, mksh and rbash given with -c
//     (also after other options, as in -e -c, -lc, -o pipefail -c), or given on
//     standard input as a heredoc or here-string when there is no script file
//     (bash <<'EOF' … EOF); the shell command itself is reported too;
//   - the arguments of eval, joined with spaces; eval is reported too;
//   - the arguments of watch without -x, joined with spaces, as watch runs
//     them with sh -c;
//   - the -c script of su and runuser, and the command of runuser -u USER;
//     su and runuser are reported too;
//   - the command of each -exec, -execdir, -ok and -okdir action of find; find
//     is reported too.
//
// # Dynamic commands
//
// Split does not expand anything. A word with a parameter expansion ($VAR,
// ${VAR}), a command or process substitution or an arithmetic expansion is
// kept as its source text and makes the command Dynamic; Prefix is the text
// of Line before the first expansion (git push origin $B has Prefix
// "git push origin ").
//
// Prefix is "" when the program itself is not known:
//   - its word has an expansion ($GIT push, "$HOME"/bin/rm) or an unquoted
//     glob or brace expansion (/???/r?, {rm,-rf,/});
//   - a word that a wrapper consumed could expand to several words
//     (sudo -u $U cmd, timeout {1,rm} -rf /);
//   - the command comes from a script string with an expansion
//     (bash -c "rm $X", eval "$CMD"), where the expanded text could add any
//     command; such a script that does not parse is reported as one command
//     whose only word is the script text;
//   - the command runs inside one whose program is not known
//     (timeout $T bash -c 'rm -rf /' reports rm -rf / with Prefix "").
//
// A caller should fail closed on a Dynamic command whose Prefix could begin a
// denied pattern, and always when Prefix is "".
//
// An unquoted brace expansion in an argument makes the command Dynamic too,
// since bash turns it into other words: git push origin {main,} runs
// git push origin main. Globs (*.txt) and ~ in arguments are kept as written
// and do not make a command Dynamic.
//
// Line joins the words with single spaces and also reduces each run of white
// space inside a word to one space, so "DROP   TABLE" in quotes matches the
// pattern *DROP TABLE*.
//
// # What Split cannot see
//
//   - Values of variables, and so what $CMD, "$@" or $(…) produce at run time.
//   - Aliases, and functions defined outside the line: in git status, git
//     could be anything the user's shell defined.
//   - The contents of scripts and files that run: ./deploy.sh, source env.sh,
//     make, npm run, git hooks and aliases.
//   - Code given to other interpreters: python -c, perl -e, node -e, ruby -e,
//     awk 'BEGIN { system(…) }', psql -f, and so on. The interpreter command
//     is reported with its arguments, so a pattern can still match them.
//   - Remote commands: ssh host cmd is reported as the ssh command with all its
//     arguments; the remote command is not split.
//   - Text turned into code at run time: echo … | sh, curl … | bash,
//     base64 -d <<< … | sh, bash script.sh. The receiving shell is reported as
//     a command without a script (sh), which a policy can deny.
//   - Input that xargs reads: xargs rm -rf reports rm -rf without the names it
//     will be given.
//   - Wrappers and option values not listed above: an option unknown to Split
//     is taken as a flag without a value, and a program not listed (chroot,
//     flock, taskset, parallel, fd -x, …) is reported as the program.
//   - Expansions that change words in ways the text does not show: an unquoted
//     $VAR anywhere may expand to several words, including words that find or
//     a shell reads as a new -exec or -c; only the Dynamic flag of the
//     command that holds it signals this.
//
// Split returns an error, and no commands, for a line longer than
// MaxLineBytes, a line that is not valid UTF-8, a line or a literal -c, eval,
// watch, su -c, heredoc or env -S script that does not parse, scripts and
// substitutions nested deeper than 8 levels, and lines with more than 1,000
// commands. A caller should treat an error as a denial.
package shell
