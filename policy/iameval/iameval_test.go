package iameval_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenhq/warden/policy/iameval"
)

// killed is the Deny that Warden puts on the agent runtime role when it
// kills a session, beside the role's allow.
const killed = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Runtime", "Effect": "Allow", "Action": ["s3:GetObject", "s3:List*"], "Resource": "arn:aws:s3:::data-lake/*"},
    {"Sid": "KilledSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:SourceIdentity": ["ses-killed-1", "ses-killed-2"]}}}
  ]
}`

func TestDecide(t *testing.T) {
	t.Parallel()
	const obj = "arn:aws:s3:::data-lake/raw/a.csv"
	tests := []struct {
		name, doc, action, resource string
		ctx                         map[string]string
		want                        iameval.Decision
	}{
		{"allowed", killed, "s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "ses-live"}, iameval.Allow},
		{"action names fold case", killed, "S3:getobject", obj, nil, iameval.Allow},
		{"action wildcard", killed, "s3:ListBucket", obj, nil, iameval.Allow},
		{"resources do not fold case", killed, "s3:GetObject", "arn:aws:s3:::Data-Lake/raw/a.csv", nil, iameval.ImplicitDeny},
		{"no statement applies", killed, "s3:PutObject", obj, nil, iameval.ImplicitDeny},
		{"killed session", killed, "s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "ses-killed-2"}, iameval.Deny},
		{"condition key names fold case", killed, "s3:GetObject", obj, map[string]string{"AWS:sourceidentity": "ses-killed-1"}, iameval.Deny},
		{"condition values do not", killed, "s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "SES-KILLED-1"}, iameval.Allow},
		{"deny applies to any action", killed, "ec2:RunInstances", "arn:aws:ec2:eu-west-1:123456789012:instance/*", map[string]string{"aws:SourceIdentity": "ses-killed-1"}, iameval.Deny},
		{"absent key does not match StringEquals", killed, "s3:GetObject", obj, nil, iameval.Allow},

		{"single statement object, string action",
			`{"Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/?"}}`,
			"s3:GetObjectAcl", "arn:aws:s3:::b/k", nil, iameval.Allow},
		{"? is one character",
			`{"Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/?"}}`,
			"s3:GetObject", "arn:aws:s3:::b/kk", nil, iameval.ImplicitDeny},
		{"NotAction",
			`{"Statement": {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}}`,
			"s3:PutObject", obj, nil, iameval.Deny},
		{"NotAction, listed",
			`{"Statement": {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}}`,
			"s3:GetObject", obj, nil, iameval.ImplicitDeny},
		{"NotResource",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "NotResource": ["arn:aws:s3:::secret/*"]}}`,
			"s3:GetObject", "arn:aws:s3:::secret/k", nil, iameval.ImplicitDeny},

		{"principal tag",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/Team": "data"}, iameval.Allow},
		{"principal tag, other value",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/team": "web"}, iameval.ImplicitDeny},
		{"keys of one operator are and-ed",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data", "aws:PrincipalTag/env": "prod"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/team": "data"}, iameval.ImplicitDeny},
		{"operators are and-ed",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}, "StringLike": {"aws:SourceIdentity": "ses-*"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/team": "data", "aws:SourceIdentity": "ses-1"}, iameval.Allow},
		{"StringLike is case-sensitive",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringLike": {"aws:SourceIdentity": "ses-*"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "SES-1"}, iameval.ImplicitDeny},
		{"StringEqualsIgnoreCase",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualsIgnoreCase": {"aws:SourceIdentity": "ses-1"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "SES-1"}, iameval.Allow},
		{"StringNotEquals holds when the key is absent",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": ["data", "ml"]}}}}`,
			"s3:GetObject", obj, nil, iameval.Deny},
		{"StringNotEquals of a listed value",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": ["data", "ml"]}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/team": "ml"}, iameval.ImplicitDeny},
		{"StringNotLike of another value",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotLike": {"aws:SourceIdentity": "ses-*"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "admin"}, iameval.Deny},
		{"IfExists holds when the key is absent",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualsIfExists": {"aws:PrincipalTag/team": "data"}}}}`,
			"s3:GetObject", obj, nil, iameval.Allow},
		{"IfExists compares a present key",
			`{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualsIfExists": {"aws:PrincipalTag/team": "data"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:PrincipalTag/team": "web"}, iameval.ImplicitDeny},
		{"Null true: absent",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Null": {"aws:SourceIdentity": "true"}}}}`,
			"s3:GetObject", obj, nil, iameval.Deny},
		{"Null true: present",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Null": {"aws:SourceIdentity": true}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:SourceIdentity": "ses-1"}, iameval.ImplicitDeny},
		{"Bool",
			`{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:SecureTransport": "false"}, iameval.Deny},

		// What the console's "Revoke active sessions" puts on a role.
		{"revoked: issued before",
			`{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:TokenIssueTime": "2026-11-26T11:59:59Z"}, iameval.Deny},
		{"revoked: issued after",
			`{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}, iameval.ImplicitDeny},
		{"revoked: no issue time",
			`{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}}}}`,
			"s3:GetObject", obj, nil, iameval.ImplicitDeny},
		{"DateGreaterThan, epoch seconds",
			`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "1795000000"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:CurrentTime": "2026-11-26T12:00:00Z"}, iameval.Allow},
		{"DateGreaterThan, a day",
			`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThanEquals": {"aws:CurrentTime": "2026-11-27"}}}}`,
			"s3:GetObject", obj, map[string]string{"aws:CurrentTime": "2026-11-26T12:00:00Z"}, iameval.ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := iameval.Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Decide(tt.action, tt.resource, tt.ctx); got != tt.want {
				t.Errorf("Decide(%s, %s, %v) = %v, want %v", tt.action, tt.resource, tt.ctx, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, want string }{
		{"not JSON", `{`, "policy document: unexpected EOF"},
		{"trailing data", `{"Statement": []} {}`, "policy document: data after the JSON value"},
		{"not an object", `[]`, "policy document: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{"null", `null`, "policy document: not a JSON object"},
		{"no statement", `{"Version": "2012-10-17"}`, "policy document: no Statement"},
		{"bad version", `{"Version": "2012-10-18", "Statement": []}`, `policy document: Version "2012-10-18": want "2012-10-17" or "2008-10-17"`},
		{"unknown element", `{"Statement": [], "Statements": []}`, `policy document: unknown element "Statements"`},
		{"no effect", `{"Statement": {"Action": "s3:*", "Resource": "*"}}`, "policy document: statement 1: no Effect"},
		{"lower-case effect", `{"Statement": {"Effect": "allow", "Action": "s3:*", "Resource": "*"}}`,
			`policy document: statement 1: Effect "allow": want "Allow" or "Deny"`},
		{"Sid named", `{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Sid": "Two", "Effect": "Deny", "Resource": "*"}]}`,
			`policy document: statement 2 (Sid "Two"): want exactly one of Action and NotAction`},
		{"Sid not alphanumeric", `{"Statement": {"Sid": "deny-killed", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}}`,
			`policy document: statement 1: Sid "deny-killed": IAM takes ASCII letters and digits only`},
		{"Action and NotAction", `{"Statement": {"Effect": "Deny", "Action": "s3:*", "NotAction": "s3:Get*", "Resource": "*"}}`,
			"policy document: statement 1: want exactly one of Action and NotAction"},
		{"no resource", `{"Statement": {"Effect": "Deny", "Action": "s3:*"}}`,
			"policy document: statement 1: want exactly one of Resource and NotResource"},
		{"empty action list", `{"Statement": {"Effect": "Deny", "Action": [], "Resource": "*"}}`,
			"policy document: statement 1: Action []: want a string or a non-empty array of strings"},
		{"null action", `{"Statement": {"Effect": "Deny", "Action": null, "Resource": "*"}}`,
			"policy document: statement 1: Action is null"},
		{"action without service", `{"Statement": {"Effect": "Deny", "Action": "GetObject", "Resource": "*"}}`,
			`policy document: statement 1: action "GetObject": want service:action or *`},
		{"resource not an ARN", `{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "bucket/*"}}`,
			`policy document: statement 1: resource "bucket/*": want an ARN or *`},
		{"principal", `{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}}`,
			"policy document: statement 1: Principal is for resource-based policies, which this package does not evaluate"},
		{"policy variable", `{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"}}`,
			`policy document: statement 1: Resource "arn:aws:s3:::b/${aws:username}/*": policy variables are not supported`},
		{"set operator", `{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}}}`,
			`policy document: statement 1: Condition: operator "ForAnyValue:StringEquals" is not supported (supported: the String, Date, Bool and Null operators, with IfExists)`},
		{"numeric operator", `{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}}`,
			`policy document: statement 1: Condition: operator "NumericLessThan" is not supported (supported: the String, Date, Bool and Null operators, with IfExists)`},
		{"bad date", `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "yesterday"}}}}`,
			`policy document: statement 1: Condition: DateLessThan: aws:TokenIssueTime: "yesterday" is not a date (ISO 8601 or seconds since the epoch)`},
		{"empty values", `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIdentity": []}}}}`,
			"policy document: statement 1: Condition: StringEquals: aws:SourceIdentity: an empty list of values"},
		{"object value", `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIdentity": {}}}}}`,
			"policy document: statement 1: Condition: StringEquals: aws:SourceIdentity: value {}: want a string, number or boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := iameval.Parse([]byte(tt.doc))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%s):\n got %v\nwant %s", tt.doc, err, tt.want)
			}
		})
	}
}

// TestMatchAgreesWithRegexp checks the wildcard matcher against regular
// expressions built from the same patterns (* is .*, ? is .), for random
// patterns and strings over a small alphabet.
func TestMatchAgreesWithRegexp(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	alphabet := []string{"a", "b", "/", ":", "é", "*", "?"}
	word := func(n int, wild bool) string {
		var b strings.Builder
		for range rng.IntN(n) {
			c := alphabet[rng.IntN(len(alphabet))]
			if !wild && (c == "*" || c == "?") {
				c = "a"
			}
			b.WriteString(c)
		}
		return b.String()
	}
	for range 20000 {
		pat, s := word(7, true), word(8, false)
		var re strings.Builder
		re.WriteString("(?s)^")
		for _, r := range pat {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		if got, want := iameval.Match(pat, s), regexp.MustCompile(re.String()).MatchString(s); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pat, s, got, want)
		}
	}
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	for d, want := range map[iameval.Decision]string{iameval.Allow: "Allow", iameval.Deny: "Deny", iameval.ImplicitDeny: "ImplicitDeny", 7: "Decision(7)"} {
		if got := d.String(); got != want {
			t.Errorf("%d: %q, want %q", int(d), got, want)
		}
	}
}
