package gatewaybench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wardenhq/warden/bench/hookbench"
	"github.com/wardenhq/warden/shared/llm/meter"
)

func TestMessageAndRequestBody(t *testing.T) {
	t.Parallel()
	if n := len(Message()); n != MessageBytes {
		t.Errorf("Message: %d bytes, want %d", n, MessageBytes)
	}
	var msg struct {
		Model string `json:"model"`
		Usage struct {
			Input  int64 `json:"input_tokens"`
			Output int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(Message(), &msg); err != nil || msg.Model != answerModel || msg.Usage.Input != Usage.Input || msg.Usage.Output != Usage.Output {
		t.Errorf("Message: %+v, %v", msg, err)
	}
	for _, stream := range []bool{false, true} {
		b := RequestBody(1024, stream, 1024)
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if len(b) != 1024 || json.Unmarshal(b, &req) != nil || req.Model != Model || req.Stream != stream {
			t.Errorf("RequestBody(stream %t): %d bytes, %+v", stream, len(b), req)
		}
	}
	if b := RequestBody(1024, false, 10); !json.Valid(b) {
		t.Errorf("RequestBody of a size too small: %s", b)
	}
}

// TestAnswersMeterExactly: Warden's own meter reads the stand-in's usage
// out of both answers, so the audit trail can be checked against Usage.
func TestAnswersMeterExactly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		stream bool
		body   []byte
	}{{"json", false, Message()}, {"sse", true, StreamBytes(3)}} {
		m := meter.New(meter.AnthropicMessages, tt.stream)
		_, _ = m.Write(tt.body)
		r := m.Result()
		if !r.Complete || r.Error != nil || r.Estimated || r.Tokens.Input != Usage.Input || r.Tokens.Output != Usage.Output ||
			r.Tokens.CacheRead != Usage.CacheRead || r.Tokens.CacheWrite5m != Usage.CacheWrite {
			t.Errorf("%s: %+v", tt.name, r)
		}
	}
}

func TestStandIn(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&StandIn{Key: "k", Deltas: 2})
	t.Cleanup(srv.Close)
	post := func(body []byte, header ...string) (*http.Response, []byte, []time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		arr, got, err := Arrivals(resp.Body, start)
		if err != nil {
			t.Fatal(err)
		}
		return resp, got, arr
	}
	for _, tt := range []struct {
		name       string
		body       []byte
		header     []string
		wantStatus int
		want       []byte
	}{
		{"json", RequestBody(100, false, 1024), nil, 200, Message()},
		{"stream with the default deltas", RequestBody(100, true, 1024), nil, 200, StreamBytes(2)},
		{"stream with 5 deltas", RequestBody(100, true, 1024), []string{HeaderDeltas, "5"}, 200, StreamBytes(5)},
		{"the right key", RequestBody(100, false, 1024), []string{"X-Api-Key", "k"}, 200, Message()},
		{"another key", RequestBody(100, false, 1024), []string{"X-Api-Key", "x"}, 401, nil},
		{"bad delay", RequestBody(100, true, 1024), []string{HeaderDelay, "soon"}, 400, nil},
	} {
		resp, got, _ := post(tt.body, tt.header...)
		if resp.StatusCode != tt.wantStatus || (tt.want != nil && !bytes.Equal(got, tt.want)) {
			t.Errorf("%s: HTTP %d, %q", tt.name, resp.StatusCode, got)
		}
	}

	// Events spaced 30 ms apart arrive one by one.
	_, got, arr := post(RequestBody(100, true, 1024), HeaderDeltas, "1", HeaderDelay, "30ms")
	if len(arr) != StreamEvents(1) || !bytes.Equal(got, StreamBytes(1)) {
		t.Fatalf("%d arrivals for %d events", len(arr), StreamEvents(1))
	}
	for i, g := range Gaps(arr) {
		if g < 20*time.Millisecond {
			t.Errorf("gap %d: %v, want about 30ms", i, g)
		}
	}
}

func TestArrivalsSplitReads(t *testing.T) {
	t.Parallel()
	body := StreamBytes(4)
	arr, got, err := Arrivals(iotest.OneByteReader(bytes.NewReader(body)), time.Now())
	if err != nil || len(arr) != StreamEvents(4) || !bytes.Equal(got, body) {
		t.Errorf("one byte at a time: %d arrivals, %v", len(arr), err)
	}
	arr, _, _ = Arrivals(strings.NewReader("a\n\nb\n\n"), time.Now())
	if len(arr) != 2 || arr[0] != arr[1] {
		t.Errorf("two events in one read: %v, want two equal times", arr)
	}
}

func TestChecker(t *testing.T) {
	t.Parallel()
	answer := "right"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) }))
	t.Cleanup(srv.Close)
	c := &Checker{Base: srv.Client().Transport, Want: []byte("right")}
	client := &http.Client{Transport: c}
	get := func(read bool) {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if read {
			_, _ = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
	}
	get(true)
	get(false)
	answer = "wrong"
	get(true)
	answer = "righter"
	get(true)
	got := c.Take()
	if got.Equal != 1 || got.Cut != 1 || got.Differ != 2 || got.FirstByte.Count() != 3 ||
		!strings.Contains(got.FirstDiff, "differs from the upstream's within bytes 0 to 5") {
		t.Errorf("checked %+v", got)
	}
	if again := c.Take(); again.Equal+again.Differ+again.Cut != 0 {
		t.Errorf("Take did not start afresh: %+v", again)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&StandIn{Deltas: 2, Delay: 50 * time.Millisecond})
	t.Cleanup(srv.Close)
	target := hookbench.Target{URL: srv.URL + "/v1/messages", Body: func(int) []byte { return RequestBody(100, true, 300) }}
	res, err := Concurrent(context.Background(), hookbench.NewClient(20, 5*time.Second), target,
		StreamsConfig{Streams: 20, Ramp: 20 * time.Millisecond, Want: StreamBytes(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != 20 || res.OK != 20 || res.Errors+res.Differ != 0 || res.PeakOpen < 15 || res.Life.Min() < 200*time.Millisecond {
		t.Errorf("result %+v", res)
	}
	res, _ = Concurrent(context.Background(), hookbench.NewClient(2, 5*time.Second), target,
		StreamsConfig{Streams: 2, Want: []byte("other")})
	if res.Differ != 2 || res.OK != 0 {
		t.Errorf("wrong content: %+v", res)
	}
}
