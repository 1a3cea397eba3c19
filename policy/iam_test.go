package policy

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenhq/warden/policy/iameval"
)

func TestSessionPolicyExample(t *testing.T) {
	t.Parallel()
	p := loadExample(t)
	got := p.SessionPolicy(Principal{Project: "data-pipeline", Agent: "claude-data", Labels: map[string]string{"env": "prod", "team": "data"}}).JSON()
	want := `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Deny","Action":["s3:DeleteObject","s3:DeleteObjectVersion","s3:DeleteBucket"],"Resource":["arn:aws:s3:::data-lake","arn:aws:s3:::data-lake/*"]},` +
		`{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::data-lake","arn:aws:s3:::data-lake/raw/*"]},` +
		`{"Effect":"Allow","Action":["bedrock:InvokeModel","bedrock:InvokeModelWithResponseStream"],"Resource":[` +
		`"arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",` +
		`"arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"]}]}`
	if got != want {
		t.Errorf("session policy:\n%s\nwant:\n%s", got, want)
	}
	// The web project has no AWS allow: only the lake deny applies.
	web := p.SessionPolicy(Principal{Project: "project-a", Agent: "claude-code"})
	for _, st := range web.Statement {
		if st.Effect == "Allow" {
			t.Errorf("project-a gets %s %v", st.Effect, st.Action)
		}
	}
}

func TestSessionPolicyLeavesOutWhatIAMCannotEnforce(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `version: 1
rules:
  - {id: cond-allow, effect: allow, action: s3:PutObject, resource: "arn:aws:s3:::b/*", when: attrs.size < 10}
  - {id: cond-deny, effect: deny, action: s3:DeleteObject, resource: "arn:aws:s3:::b/*", when: attrs.size < 10}
  - {id: approve, effect: approve, action: s3:PutBucketPolicy, resource: "arn:aws:s3:::b"}
  - {id: read, effect: allow, action: s3:GetObject, resource: "arn:aws:s3:::b/*"}
  - {id: git, effect: allow, action: git:push}
approvers:
  g: {rules: [approve]}
`)
	got := p.SessionPolicy(Principal{Project: "x"}).JSON()
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::b/*"]},` +
		`{"Effect":"Deny","Action":["s3:PutBucketPolicy"],"Resource":["arn:aws:s3:::b"]},` +
		`{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]}`
	if got != want {
		t.Errorf("session policy:\n%s\nwant:\n%s", got, want)
	}
}

func TestSessionPolicyTooLarge(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("version: 1\nprojects:\n  lake:\n    agents: {loader: {}}\nrules:\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "  - {effect: allow, who: {project: lake, agent: loader}, action: s3:GetObject, resource: \"arn:aws:s3:::data-lake/raw/source-%02d/*\"}\n", i)
	}
	_, err := Load("p.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("a 60-prefix session policy loaded")
	}
	re := regexp.MustCompile(`^p\.yaml:4:22: the IAM session policy compiled for lake/loader is (\d+) characters; AWS allows 2048 \((\d+) over\) \[iam-policy-too-large\]`)
	m := re.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error:\n%v", err)
	}
	var n, over int
	fmt.Sscan(m[1], &n)
	fmt.Sscan(m[2], &over)
	// One statement, 60 resources of len(`"arn:aws:s3:::data-lake/raw/source-00/*"`)+1 each.
	wantN := len(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":[]}]}`) + 60*41 - 1
	if n != wantN || over != n-2048 {
		t.Errorf("reported %d characters, %d over; want %d, %d", n, over, wantN, wantN-2048)
	}
}

// TestSessionPolicyAgreesWithIAM is the property test of the IAM compiler:
// for random AWS-only policies (allow, deny and approve rules) and random
// requests, Warden allows exactly when IAM, evaluating the compiled
// document by its documented rules, allows: what needs approval is never
// in the credentials. The IAM side is an independent implementation (package iameval:
// explicit deny > allow > implicit deny).
func TestSessionPolicyAgreesWithIAM(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	actionPats := []string{"s3:GetObject", "s3:getobject", "s3:Get*", "s3:*", "s3:*Object", "s3:?etObject", "s3:Put*",
		"s3:DeleteObject", "ec2:Describe*", "ec2:*Instances", "dynamodb:GetItem", "dynamodb:*"}
	resourcePats := []string{"*", "arn:aws:s3:::bucket-a/*", "arn:aws:s3:::bucket-?/raw/*", "arn:aws:s3:::*",
		"arn:aws:s3:::bucket-b/curated/key?", "arn:*:s3:::bucket-a/raw/key1", "arn:aws:ec2:us-*:123456789012:instance/*",
		"arn:aws:dynamodb:*:*:table/orders", "arn:aws:dynamodb:eu-west-1:123456789012:table/*"}
	actions := []string{"s3:GetObject", "S3:GETOBJECT", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObjectAcl",
		"ec2:DescribeInstances", "ec2:TerminateInstances", "dynamodb:GetItem", "dynamodb:PutItem"}
	resources := []string{"arn:aws:s3:::bucket-a/raw/key1", "arn:aws:s3:::bucket-b/raw/key2", "arn:aws:s3:::bucket-b/curated/key1",
		"arn:aws:s3:::bucket-c/x", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", "arn:aws:ec2:eu-west-1:123456789012:instance/i-2",
		"arn:aws:dynamodb:eu-west-1:123456789012:table/orders", "arn:aws:dynamodb:us-east-1:123456789012:table/users"}
	for round := 0; round < 200; round++ {
		var b strings.Builder
		b.WriteString("version: 1\nrules:\n")
		for i, n := 0, 1+rng.IntN(6); i < n; i++ {
			effect := "allow"
			switch rng.IntN(4) {
			case 0:
				effect = "deny"
			case 1:
				effect = "approve"
			}
			if rng.IntN(15) == 0 {
				fmt.Fprintf(&b, "  - {effect: %s, action: \"*\"}\n", effect)
				continue
			}
			fmt.Fprintf(&b, "  - {effect: %s, action: [%q, %q], resource: [%q, %q]}\n", effect,
				pick(actionPats), pick(actionPats), pick(resourcePats), pick(resourcePats))
		}
		if strings.Contains(b.String(), "approve") {
			b.WriteString("approvers:\n  g: {rules: [\"*\"]}\n")
		}
		p := mustLoad(t, b.String())
		pr := Principal{Project: "p", Agent: "a"}
		doc := p.SessionPolicy(pr).JSON()
		for _, action := range actions {
			for _, res := range resources {
				warden := p.Evaluate(&Request{Principal: pr, Action: action, Resource: res}).Effect == Allow
				iam := iamAllows(t, doc, action, res)
				if warden != iam {
					t.Fatalf("policy:\n%s\ndocument: %s\nrequest %s on %s: Warden allows %v, IAM allows %v",
						b.String(), doc, action, res, warden, iam)
				}
			}
		}
	}
}

// iamAllows evaluates an IAM policy document as IAM documents it, with
// package iameval: an explicit Deny wins, then an Allow, else the implicit
// deny. Action names match case-insensitively, resources case-sensitively;
// * matches any run of characters and ? one character.
func iamAllows(t *testing.T, doc, action, resource string) bool {
	t.Helper()
	d, err := iameval.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("document %s: %v", doc, err)
	}
	return d.Decide(action, resource, nil) == iameval.Allow
}
