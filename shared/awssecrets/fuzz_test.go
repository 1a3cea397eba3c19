package awssecrets

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// FuzzParseAnswer feeds arbitrary answers to the Caller's parser: it must
// not panic, must fail every answer but a 200, with an error the callers
// know (not found, an API error, an unreadable answer), and must retry
// only 5xx and throttling.
func FuzzParseAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"Name":"warden/dev/x","SecretString":"v"}`))
	f.Add(400, "", []byte(`{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"no"}`))
	f.Add(400, "ThrottlingException:http://internal", []byte(`{}`))
	f.Add(503, "", []byte(`<html>`))
	f.Add(200, "", []byte(`{"SecretBinary":"!!"}`))
	f.Fuzz(func(t *testing.T, status int, errType string, data []byte) {
		out, retry, err := parseAnswer(status, errType, data)
		if status == 200 {
			if err == nil && out == nil || retry {
				t.Fatalf("200: %v %v %v", out, retry, err)
			}
			return
		}
		var nf *types.ResourceNotFoundException
		var ae smithy.APIError
		if out != nil || err == nil || !errors.As(err, &nf) && !errors.As(err, &ae) {
			t.Fatalf("HTTP %d: %v, %v", status, out, err)
		}
		if retry && status < 500 && (ae == nil || ae.ErrorCode() != "ThrottlingException") {
			t.Fatalf("HTTP %d retried: %v", status, err)
		}
	})
}
