package stepfn_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/stepfn"
)

var jsonMarshal = json.Marshal

// FuzzParseError feeds arbitrary error answers to the parser: it must not
// panic, and always gives a code without a namespace or extra.
func FuzzParseError(f *testing.F) {
	f.Add(400, "", []byte(`{"__type":"com.amazonaws.swf.service.v2.model#TaskTimedOut","message":"Task Timed Out"}`))
	f.Add(400, "InvalidToken:http://internal", []byte(`{}`))
	f.Add(500, "", []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, errType string, data []byte) {
		e := stepfn.ParseError(status, errType, data)
		if e == nil || e.Code == "" || strings.Contains(e.Code, "#") || strings.Contains(e.Code, ":") || e.Status != status {
			t.Fatalf("ParseError(%d, %q, %q) = %+v", status, errType, data, e)
		}
	})
}
