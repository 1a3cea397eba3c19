package lambdas

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestBuffered(t *testing.T) {
	t.Parallel()
	h := Buffered(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		caller, _ := IAMCaller(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Many", "a")
		w.Header().Add("X-Many", "b")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "q": r.URL.Query(),
			"auth": r.Header.Get("Authorization"), "body": string(body), "caller": caller, "remote": r.RemoteAddr})
	}))
	resp, err := h(t.Context(), &events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/v1/admin/projects",
		MultiValueHeaders:               map[string][]string{"Authorization": {"AWS4-HMAC-SHA256 Credential=…"}},
		MultiValueQueryStringParameters: map[string][]string{"after": {"5"}, "code": {"a", "b"}},
		Body:                            base64.StdEncoding.EncodeToString([]byte(`{"name":"web"}`)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayProxyRequestContext{DomainName: "abc.execute-api.eu-central-1.amazonaws.com",
			Identity: events.APIGatewayRequestIdentity{SourceIP: "203.0.113.7", UserArn: "arn:aws:iam::123456789012:user/alice"}},
	})
	if err != nil || resp.StatusCode != http.StatusCreated || resp.IsBase64Encoded {
		t.Fatalf("response %+v, %v", resp, err)
	}
	var got struct {
		Method, Path, Auth, Body, Caller, Remote string
		Q                                        map[string][]string
	}
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.Path != "/v1/admin/projects" || got.Body != `{"name":"web"}` || got.Auth == "" ||
		got.Caller != "arn:aws:iam::123456789012:user/alice" || got.Remote != "203.0.113.7" || strings.Join(got.Q["code"], ",") != "a,b" {
		t.Errorf("the handler saw %+v", got)
	}
	if strings.Join(resp.MultiValueHeaders["X-Many"], ",") != "a,b" {
		t.Errorf("headers %v", resp.MultiValueHeaders)
	}

	bin := Buffered(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0x1f, 0x8b, 0xff, 0}) }))
	resp, _ = bin(t.Context(), &events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/x"})
	if !resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 0xff, 0}) || resp.StatusCode != 200 {
		t.Errorf("binary answer %+v", resp)
	}
	big := strings.Repeat("x", maxRequestBody+1)
	resp, _ = bin(t.Context(), &events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/x", Body: big})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized body: %d", resp.StatusCode)
	}
}

// TestStreamingForwardsEachEvent: the status and headers reach the
// runtime before the body, and each event written reaches it before the
// handler writes the next (the handler waits for the reader in between).
func TestStreamingForwardsEachEvent(t *testing.T) {
	t.Parallel()
	read := make(chan struct{})
	h := Streaming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		for i := range 3 {
			w.Write([]byte("event: ping\ndata: " + string(rune('0'+i)) + "\n\n"))
			http.NewResponseController(w).Flush()
			select {
			case <-read:
			case <-time.After(5 * time.Second):
				t.Error("the event was not read before the next was written: the stream is buffered")
				return
			}
		}
	}))
	resp, err := h(t.Context(), &events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/messages"})
	if err != nil || resp.StatusCode != 200 || resp.MultiValueHeaders["Content-Type"][0] != "text/event-stream" {
		t.Fatalf("response %+v, %v", resp, err)
	}
	// What the runtime sends: a JSON prelude, eight zero bytes, the body.
	br := bufio.NewReader(resp)
	prelude, err := br.ReadBytes(0)
	if err != nil || !bytes.Contains(prelude, []byte(`"statusCode":200`)) {
		t.Fatalf("prelude %q, %v", prelude, err)
	}
	if zeros, _ := br.Peek(7); !bytes.Equal(zeros, make([]byte, 7)) {
		t.Fatalf("prelude not followed by eight zero bytes: %q", zeros)
	}
	br.Discard(7)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != "event: ping\n" {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		br.ReadString('\n')
		br.ReadString('\n')
		read <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the events: %q, %v", rest, err)
	}
}
