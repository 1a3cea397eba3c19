package iameval_test

import (
	"testing"

	"github.com/wardenhq/warden/policy/iameval"
)

// FuzzParse feeds arbitrary documents to Parse: it must not panic, and a
// document it takes must be decided the same way twice, without panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(killed))
	f.Add([]byte(`{"Statement": {"Effect": "Deny", "NotAction": "s3:Get*", "NotResource": ["arn:aws:s3:::b/?"]}}`))
	f.Add([]byte(`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}, "Null": {"aws:SourceIdentity": false}, "StringNotLikeIfExists": {"aws:PrincipalTag/team": ["d*", 1]}}}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::data-lake/raw/*"]}]}`))
	ctx := map[string]string{"aws:SourceIdentity": "ses-killed-1", "aws:PrincipalTag/team": "data", "aws:TokenIssueTime": "2026-11-26T11:00:00Z"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := iameval.Parse(doc)
		if err != nil {
			return
		}
		for _, st := range d.Statements {
			if (st.Actions == nil) == (st.NotActions == nil) || (st.Resources == nil) == (st.NotResources == nil) {
				t.Fatalf("Parse(%q) took a statement without exactly one action and one resource element: %+v", doc, st)
			}
		}
		for _, c := range []struct{ action, resource string }{
			{"s3:GetObject", "arn:aws:s3:::data-lake/raw/a"}, {"S3:getobject", "arn:aws:s3:::b/k"}, {"ec2:RunInstances", "*"},
		} {
			a, b := d.Decide(c.action, c.resource, ctx), d.Decide(c.action, c.resource, ctx)
			if a != b || a < iameval.ImplicitDeny || a > iameval.Deny {
				t.Fatalf("Decide(%s, %s) on %q: %v then %v", c.action, c.resource, doc, a, b)
			}
		}
	})
}
