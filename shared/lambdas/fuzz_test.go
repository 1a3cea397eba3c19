package lambdas

import (
	"encoding/base64"
	"io"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzHTTPRequest turns arbitrary proxy events into requests: no panic, a
// body over the limit refused, and the body the handler reads is the
// event's (decoded when it says base64).
func FuzzHTTPRequest(f *testing.F) {
	f.Add("POST", "/v1/messages", "a=1&b=2", "x-api-key", "wdn_s_x", `{"model":"m"}`, false)
	f.Add("GET", "/v1/admin/audit", "after=5", "Authorization", "AWS4-HMAC-SHA256", "", false)
	f.Add("PUT", "/%zz", "%", "\n", "\x00", base64.StdEncoding.EncodeToString([]byte{0xff, 0}), true)
	f.Fuzz(func(t *testing.T, method, path, query, hk, hv, body string, b64 bool) {
		ev := &events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body, IsBase64Encoded: b64,
			QueryStringParameters: map[string]string{"q": query}, Headers: map[string]string{hk: hv},
			MultiValueHeaders: map[string][]string{hk: {hv, hv}}}
		r, err := httpRequest(t.Context(), ev)
		if err != nil {
			return // refused: a bad method or URL, or too large
		}
		got, err := io.ReadAll(r.Body)
		want := []byte(body)
		if b64 {
			var derr error
			want, derr = base64.StdEncoding.DecodeString(body)
			if derr != nil {
				return // the handler sees a read error, as for a broken body
			}
		}
		if err != nil || string(got) != string(want) {
			t.Fatalf("body %q, read %q (%v)", want, got, err)
		}
	})
}
