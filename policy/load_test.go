package policy

import (
	"errors"
	"strings"
	"testing"
)

// loadErrors loads src and returns its errors one per line, or "" if it loads.
func loadErrors(t *testing.T, src string) string {
	t.Helper()
	_, err := Load("p.yaml", []byte(src))
	if err == nil {
		return ""
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList: %v", err, err)
	}
	lines := make([]string, len(list))
	for i, e := range list {
		lines[i] = e.Pos.String() + ": " + e.Msg + " [" + string(e.Code) + "]"
	}
	return strings.Join(lines, "\n")
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "unknown field with suggestion",
			src:  "version: 1\nrules:\n  - effect: allow\n    acton: git:push\n",
			want: "p.yaml:3:5: missing required field \"action\" [missing-field]\n" +
				"p.yaml:4:5: unknown field \"acton\" (did you mean \"action\"?) [unknown-field]",
		},
		{
			name: "unknown top-level field",
			src:  "version: 1\nrulez: []\n",
			want: "p.yaml:2:1: unknown field \"rulez\" (did you mean \"rules\"?) [unknown-field]",
		},
		{
			name: "invalid effect",
			src:  "version: 1\nrules:\n  - effect: alow\n    action: git:push\n",
			want: "p.yaml:3:13: invalid effect \"alow\" (did you mean \"allow\"?) [invalid-value]",
		},
		{
			name: "wrong type",
			src:  "version: 1\nrules:\n  - effect: [allow]\n    action: git:push\n",
			want: "p.yaml:3:13: expected a string, got a list [wrong-type]",
		},
		{
			name: "unsupported version",
			src:  "version: 2\n",
			want: "p.yaml:1:10: unsupported policy version 2 [unsupported-version]",
		},
		{
			name: "missing version",
			src:  "rules: []\n",
			want: "p.yaml:1:1: missing required field \"version\" [missing-field]",
		},
		{
			name: "errors are collected and sorted",
			src: "version: 1\nrules:\n  - effect: allow\n    action: nope\n  - id: x\n    effect: deny\n    action: git:pull\n" +
				"  - id: x\n    effect: deny\n    action: s3:Get*\n    resource: data-lake/*\n",
			want: "p.yaml:4:13: action \"nope\" has no kind prefix [bad-pattern]\n" +
				"p.yaml:7:13: unknown git action \"git:pull\" (did you mean \"git:push\"?) [bad-pattern]\n" +
				"p.yaml:8:9: rule id \"x\" is already used at p.yaml:5:5 [duplicate-id]\n" +
				"p.yaml:11:15: aws resource \"data-lake/*\" is not an ARN [bad-pattern]",
		},
		{
			name: "one kind per rule",
			src:  "version: 1\nrules:\n  - effect: allow\n    action: [git:push, s3:GetObject]\n",
			want: "p.yaml:4:24: action \"s3:GetObject\" is aws, but the rule's first action is git; a rule covers one kind [bad-pattern]",
		},
		{
			name: "ARN wildcard inside an account segment",
			src:  "version: 1\nrules:\n  - effect: allow\n    action: s3:GetObject\n    resource: arn:aws:s3:*1:12*4:x\n",
			want: "p.yaml:5:15: ARN \"arn:aws:s3:*1:12*4:x\" has a wildcard inside a partition, region or account segment; only a trailing * is allowed there [bad-pattern]",
		},
		{
			name: "command patterns need a tool rule",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    command: rm -rf /\n",
			want: "p.yaml:5:14: command patterns need a tool action, the rule is git [bad-pattern]",
		},
		{
			name: "command pattern with a path",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: tool:Bash\n    command: /bin/rm -rf /\n",
			want: "p.yaml:5:14: command pattern \"/bin/rm -rf /\" names the program by path [bad-pattern]",
		},
		{
			name: "condition that does not compile",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    when: tme.getHours() > 3\n",
			want: "p.yaml:5:11: condition: undeclared reference to 'tme' (did you mean 'time'?) [bad-condition]",
		},
		{
			name: "condition error placed after a quote",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    when: 'project == \"a\" && agnt == \"b\"'\n",
			want: "p.yaml:5:30: condition: undeclared reference to 'agnt' (did you mean 'agent'?) [bad-condition]",
		},
		{
			name: "condition error placed in a block",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    when: |\n      project == \"a\" &&\n        agnt == \"b\"\n",
			want: "p.yaml:7:9: condition: undeclared reference to 'agnt' (did you mean 'agent'?) [bad-condition]",
		},
		{
			name: "condition that is not a bool",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    when: project + \"x\"\n",
			want: "p.yaml:5:11: condition must be true or false, but it is of type string [bad-condition]",
		},
		{
			name: "unknown time zone",
			src:  "version: 1\nrules:\n  - effect: deny\n    action: git:push\n    when: time.getHours(\"Europe/Berln\") >= 22\n",
			want: "p.yaml:5:11: unknown time zone \"Europe/Berln\" in getHours() [bad-condition]",
		},
		{
			name: "unknown project with suggestion",
			src:  "version: 1\nprojects:\n  project-a: {}\nrules:\n  - effect: allow\n    who: {project: projct-a}\n    action: git:push\n",
			want: "p.yaml:6:20: unknown project \"projct-a\" (did you mean \"project-a\"?) [unknown-reference]",
		},
		{
			name: "undeclared agent",
			src:  "version: 1\nprojects:\n  p: {agents: {claude: {}}}\nrules:\n  - effect: allow\n    who: {project: p, agent: claud}\n    action: git:push\n",
			want: "p.yaml:6:30: agent \"claud\" is not declared in the rule's projects (did you mean \"claude\"?) [unknown-reference]",
		},
		{
			name: "approve rule nobody can approve",
			src:  "version: 1\nrules:\n  - id: main\n    effect: approve\n    action: git:push\n",
			want: "p.yaml:3:5: approve rule \"main\" has no approver group, so nobody could approve it [unreachable]",
		},
		{
			name: "approver group naming no approve rule",
			src: "version: 1\nrules:\n  - id: main-push\n    effect: approve\n    action: git:push\napprovers:\n" +
				"  rm:\n    slack: [U012AB3CD, bob]\n    rules: [main-psh, main-push]\n",
			want: "p.yaml:8:24: invalid Slack user or group ID \"bob\" [invalid-value]\n" +
				"p.yaml:9:13: approver group \"rm\" names \"main-psh\", which matches no approve rule (did you mean \"main-push\"?) [unknown-reference]",
		},
		{
			name: "token pasted into a channel",
			src:  "version: 1\nnotifications:\n  ops: {type: slack, channel: C0123ABCD, secret: xoxb-123-456-abcdef}\n",
			want: "p.yaml:3:50: channel \"ops\" holds what looks like a credential [secret-in-policy]",
		},
		{
			name: "budget problems",
			src: "version: 1\nbudgets:\n  - scope: project\n    period: week\n    alerts: [80, 50]\n    notify: [opps]\n" +
				"notifications:\n  ops: {type: webhook, url: \"http://example.com/hook\"}\n",
			want: "p.yaml:3:5: a budget needs usd or tokens [missing-field]\n" +
				"p.yaml:4:13: invalid period \"week\" [invalid-value]\n" +
				"p.yaml:5:18: alert thresholds are ascending percentages from 1 to 100, got 50 [invalid-value]\n" +
				"p.yaml:6:14: unknown notification channel \"opps\" (did you mean \"ops\"?) [unknown-reference]\n" +
				"p.yaml:8:29: webhook channel \"ops\" has invalid url \"http://example.com/hook\" [invalid-value]",
		},
		{
			name: "rate limit and watchdog problems",
			src:  "version: 1\nrate_limits:\n  - scope: session\n    requests: 0\n    per: 1ms\nwatchdog:\n  on_trip: stop\n",
			want: "p.yaml:4:15: requests must be at least 1 [invalid-value]\n" +
				"p.yaml:5:10: per must be between 1s and 24h [invalid-value]\n" +
				"p.yaml:7:3: the watchdog sets no threshold [missing-field]\n" +
				"p.yaml:7:12: invalid on_trip \"stop\" [invalid-value]",
		},
		{
			name: "watchdog levels",
			src: "version: 1\nwatchdog:\n  repeated_calls: {alert: 8, pause: 8}\n  upstream_errors: {alert: 0}\n" +
				"  tokens_per_minute: {}\n  max_requests_per_minute: 0\n  max_consecutive_denials: {pause: -2}\n" +
				"  window: 0s\n  max_session_duration: 30s\n",
			want: "p.yaml:3:27: repeated_calls alert level 8 must be below its pause level 8 [invalid-value]\n" +
				"p.yaml:4:28: upstream_errors alert must be at least 1, got 0 [invalid-value]\n" +
				"p.yaml:5:22: tokens_per_minute sets neither alert nor pause [missing-field]\n" +
				"p.yaml:6:28: max_requests_per_minute must be at least 1, got 0 [invalid-value]\n" +
				"p.yaml:7:36: max_consecutive_denials pause must be at least 1, got -2 [invalid-value]\n" +
				"p.yaml:9:25: max_session_duration must be at least 1m [invalid-value]",
		},
		{
			name: "watchdog level types and bounds",
			src:  "version: 1\nwatchdog:\n  repeated_calls: 101\n  upstream_errors: ten\n  tokens_per_minute: {alert: 5, stop: 9}\n",
			want: "p.yaml:3:19: repeated_calls must be at most 100, got 101 [invalid-value]\n" +
				"p.yaml:4:20: expected a whole number or {alert: N, pause: M}, got \"ten\" [wrong-type]\n" +
				"p.yaml:5:33: unknown field \"stop\" [unknown-field]",
		},
		{
			name: "rate limit of nothing",
			src:  "version: 1\nrate_limits:\n  - scope: session\n    per: 1m\n",
			want: "p.yaml:3:5: a rate limit needs requests or tokens [missing-field]",
		},
		{
			name: "token rate limit problems",
			src:  "version: 1\nrate_limits:\n  - scope: session\n    tokens: 0\n    burst: 5\n    per: 1m\n",
			want: "p.yaml:4:13: tokens must be at least 1 [invalid-value]\n" +
				"p.yaml:5:12: burst adds to requests, and this limit sets none [invalid-value]",
		},
		{
			name: "bad duration",
			src:  "version: 1\nrate_limits:\n  - scope: session\n    requests: 5\n    per: 5 minutes\n",
			want: "p.yaml:5:10: invalid duration \"5 minutes\" [invalid-value]",
		},
		{
			name: "yaml syntax error",
			src:  "version: 1\nrules:\n  - effect: allow\n   action: [git:push\n",
			want: "p.yaml:2: did not find expected '-' indicator [syntax]",
		},
		{
			name: "empty file",
			src:  "",
			want: "p.yaml:1:1: file is empty [missing-field]",
		},
		{
			name: "field set twice",
			src:  "version: 1\nversion: 1\n",
			want: "p.yaml:2:1: field \"version\" is set twice [duplicate-id]",
		},
		{
			name: "valid policy",
			src:  "version: 1\nrules:\n  - effect: allow\n    action: git:push\n    resource: github.com/a/b:refs/heads/feature/*\n",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := loadErrors(t, tt.src); got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	_, err := Load("policy.yaml", []byte("version: 1\nrules:\n  - effect: allow\n    acton: git:push\n    action: git:push\n"))
	want := "policy.yaml:4:5: unknown field \"acton\" (did you mean \"action\"?) [unknown-field]\n" +
		"\thint: allowed here: id, description, effect, who, action, resource, command, ignore_case, when"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}
