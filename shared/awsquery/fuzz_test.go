package awsquery_test

import (
	"errors"
	"testing"

	"github.com/wardenhq/warden/shared/awsquery"
)

// FuzzParseAnswer feeds arbitrary answers to the parser: it must not
// panic; an error status always gives an *Error with a code and that
// status, and a success status never does.
func FuzzParseAnswer(f *testing.F) {
	f.Add(200, []byte(identityAnswer))
	f.Add(403, []byte(`<ErrorResponse><Error><Type>Sender</Type><Code>PackedPolicyTooLarge</Code><Message>Packed policy consumes 112% of allotted space</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
	f.Add(200, []byte(`<GetCallerIdentityResponse><ResponseMetadata/></GetCallerIdentityResponse>`))
	f.Add(502, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, data []byte) {
		var out identity
		err := awsquery.ParseAnswer("GetCallerIdentity", status, data, &out)
		var e *awsquery.Error
		isErr := errors.As(err, &e)
		if status >= 200 && status <= 299 {
			if isErr {
				t.Fatalf("ParseAnswer(%d, %q) = *Error %v", status, data, err)
			}
			return
		}
		if !isErr || e.Code == "" || e.Status != status || e.Action != "GetCallerIdentity" {
			t.Fatalf("ParseAnswer(%d, %q) = %#v", status, data, err)
		}
	})
}
