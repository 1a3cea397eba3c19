package apigwtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/lambdas"
)

// TestStreaming: the stand-in hands the function a binary body base64-
// encoded and any other as text (what is not UTF-8 does not survive), and
// refuses as API Gateway and Lambda do what is over their limits; a body
// of lambdas.MaxBinaryBody, with a git client's headers, fits.
func TestStreaming(t *testing.T) {
	echo := func(_ context.Context, ev *events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
		return &events.APIGatewayProxyStreamingResponse{StatusCode: http.StatusOK,
			Headers: map[string]string{"X-Base64": fmt.Sprint(ev.IsBase64Encoded)},
			Body:    strings.NewReader(fmt.Sprintf("%d:%s", len(ev.Body), ev.Body[:min(len(ev.Body), 16)]))}, nil
	}
	gw := &Streaming{Function: echo, BinaryMediaTypes: []string{"application/x-git-receive-pack-request", "image/*"}}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	post := func(contentType string, body []byte) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/git/github.com/acme/web.git/git-receive-pack", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Basic "+strings.Repeat("x", 60))
		req.Header.Set("User-Agent", "git/2.39.5")
		req.Header.Set("Accept", "application/x-git-receive-pack-result")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Base64"), string(data)
	}
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
		base64, answer    string
	}{
		{"binary", "application/x-git-receive-pack-request", []byte{0xff, 0x00, 'P'}, 200, "true", "4:/wBQ"},
		{"binary by a wildcard", "image/png; q=1", []byte{0xff}, 200, "true", "4:/w=="},
		{"text that is not UTF-8", "application/json", []byte{'a', 0xff, 'b'}, 200, "false", "5:a\uFFFDb"},
		{"the largest binary body", "application/x-git-receive-pack-request", bytes.Repeat([]byte{1}, lambdas.MaxBinaryBody), 200, "true",
			fmt.Sprintf("%d:AQEBAQEBAQEBAQEB", (lambdas.MaxBinaryBody+2)/3*4)},
		{"over Lambda's payload", "application/x-git-receive-pack-request", make([]byte, lambdas.MaxInvokePayload*3/4+1), 413, "", `{"message": "Request Too Long"}`},
		{"over API Gateway's limit", "application/json", make([]byte, 10<<20+1), 413, "", "HTTP content length exceeded 10485760 bytes."},
	} {
		status, b64, answer := post(tc.contentType, tc.body)
		if status != tc.status || b64 != tc.base64 || answer != tc.answer {
			t.Errorf("%s: %d %q %q, want %d %q %q", tc.name, status, b64, answer, tc.status, tc.base64, tc.answer)
		}
	}
	if gw.Largest() != 10<<20+1 {
		t.Errorf("largest body %d", gw.Largest())
	}
}
