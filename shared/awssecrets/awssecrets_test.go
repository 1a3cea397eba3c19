package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/sigv4test"
)

// No Secrets Manager emulator runs here, so these tests put the real SDK
// client in front of a stand-in that speaks the service's documented
// protocol — JSON 1.1 over POST /, the operation in X-Amz-Target, requests
// signed with SigV4 — and checks each request against it: the operation,
// the content type, the exact SecretId, and the signature, computed anew
// here from the signed headers and the body.

const (
	testRegion = "us-east-1"
	accessKey  = "AKIDWARDENTEST"
	secretKey  = "test-secret-access-key" // of the stand-in alone
	prefix     = "warden/test/"
)

// answer is what the stand-in answers for a SecretId.
type answer struct {
	status int
	body   string
}

func valueAnswer(id, value string) answer {
	b, _ := json.Marshal(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + id + "-AbCdEf",
		"Name": id, "SecretString": value, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7645e9})
	return answer{http.StatusOK, string(b)}
}

func errorAnswer(code, message string) answer {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return answer{http.StatusBadRequest, string(b)}
}

// standIn is the stand-in Secrets Manager.
type standIn struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	answers map[string]answer
	asked   []string      // the SecretIds asked, in order
	gate    chan struct{} // if set, answers wait for it
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{t: t, answers: map[string]answer{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) set(id string, a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[id] = a
}

func (s *standIn) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.t.Errorf("read the request: %v", err)
		return
	}
	if problem := checkRequest(r, body); problem != "" {
		s.t.Errorf("request not in Secrets Manager's protocol: %s", problem)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil || len(in) != 1 {
		s.t.Errorf("request body %s: want exactly {\"SecretId\": ...}", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id, _ := in["SecretId"].(string)
	s.mu.Lock()
	s.asked = append(s.asked, id)
	a, ok := s.answers[id]
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if !ok {
		a = errorAnswer("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "0a1b2c3d-0000-4000-8000-000000000000")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// checkRequest returns what is wrong with r as a GetSecretValue request
// signed with the test's credentials, or "".
func checkRequest(r *http.Request, body []byte) string {
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "":
		return fmt.Sprintf("%s %s, want POST /", r.Method, r.URL)
	case r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue":
		return fmt.Sprintf("X-Amz-Target %q", r.Header.Get("X-Amz-Target"))
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		return fmt.Sprintf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	creds := sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey, Region: testRegion, Service: "secretsmanager"}
	if err := sigv4test.Verify(r, body, creds, "x-amz-target", "content-type"); err != nil {
		return err.Error()
	}
	return ""
}

// client is a real Secrets Manager client of the stand-in, without
// retries, so that each Get shows as the calls it made.
func (s *standIn) client() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region: testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "test"}, nil
		}),
		RetryMaxAttempts: 1,
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(s.srv.URL) })
}

func newSecrets(t *testing.T, sm *standIn, ttl time.Duration) *Secrets {
	t.Helper()
	s, err := New(sm.client(), prefix, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGet(t *testing.T) {
	t.Parallel()
	sm := newStandIn(t)
	sm.set(prefix+"slack-bot-token", valueAnswer(prefix+"slack-bot-token", "xoxb-1234-abcd"))
	s := newSecrets(t, sm, 0)
	v, err := s.Get(context.Background(), "slack-bot-token")
	if err != nil || v != "xoxb-1234-abcd" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if got := sm.calls(); !slices.Equal(got, []string{"warden/test/slack-bot-token"}) {
		t.Fatalf("SecretIds sent: %q", got)
	}
}

// TestTTL reads a secret again once its TTL has passed, and so serves a
// rotated value from then on.
func TestTTL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ttl, want time.Duration
	}{{0, 5 * time.Minute}, {30 * time.Second, 30 * time.Second}} {
		sm := newStandIn(t)
		id := prefix + "telegram-bot-token"
		sm.set(id, valueAnswer(id, "first"))
		s := newSecrets(t, sm, tt.ttl)
		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		now := start
		s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		get := func(at time.Duration, want string, calls int) {
			t.Helper()
			mu.Lock()
			now = start.Add(at)
			mu.Unlock()
			if v, err := s.Get(context.Background(), "telegram-bot-token"); err != nil || v != want {
				t.Fatalf("TTL %v, at %v: Get = %q, %v; want %q", tt.ttl, at, v, err, want)
			}
			if n := len(sm.calls()); n != calls {
				t.Fatalf("TTL %v, at %v: %d calls, want %d", tt.ttl, at, n, calls)
			}
		}
		get(0, "first", 1)
		sm.set(id, valueAnswer(id, "rotated"))
		get(tt.want-time.Second, "first", 1)
		get(tt.want, "rotated", 2)
		get(2*tt.want-time.Nanosecond, "rotated", 2)
		get(2*tt.want, "rotated", 3)
	}
}

// TestRefusals covers the secrets that are not served, with the exact
// error; none of the errors holds the value.
func TestRefusals(t *testing.T) {
	t.Parallel()
	const value = "xoxb-SECRET-VALUE-0123456789"
	long := value + strings.Repeat("A", notify.MaxSecretBytes+1-len(value))
	tests := []struct {
		name      string
		answer    answer
		want      string
		noSecret  bool
		wantCalls int
	}{
		{"not found", errorAnswer("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
			`secret "s": Secrets Manager has no secret warden/test/s: secret not set`, true, 2},
		{"too large", valueAnswer(prefix+"s", long),
			fmt.Sprintf(`secret "s": warden/test/s is %d bytes; the limit is %d`, len(long), notify.MaxSecretBytes), false, 2},
		{"empty", valueAnswer(prefix+"s", ""), `secret "s": warden/test/s is empty: secret not set`, true, 2},
		{"blank", valueAnswer(prefix+"s", " \n\t"), `secret "s": warden/test/s is empty: secret not set`, true, 2},
		{"binary", answer{200, `{"Name":"warden/test/s","SecretBinary":"eG94Yi1TRUNSRVQ="}`},
			`secret "s": warden/test/s holds binary data; Warden reads text secrets (SecretString)`, false, 2},
		{"no value", answer{200, `{"Name":"warden/test/s"}`}, `secret "s": warden/test/s has no value: secret not set`, true, 2},
		{"access denied", errorAnswer("AccessDeniedException", "User is not authorized to perform secretsmanager:GetSecretValue"),
			`secret "s": get warden/test/s from Secrets Manager: AccessDeniedException: User is not authorized to perform secretsmanager:GetSecretValue`, false, 2},
		{"an answer cut short", answer{200, `{"Name":"warden/test/s","SecretString":"` + value},
			`secret "s": get warden/test/s from Secrets Manager: the answer could not be read`, false, 2},
		{"an answer that is not JSON", answer{200, value},
			`secret "s": get warden/test/s from Secrets Manager: the answer could not be read`, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sm := newStandIn(t)
			sm.set(prefix+"s", tt.answer)
			s := newSecrets(t, sm, 0)
			for range 2 { // refusals are not cached
				v, err := s.Get(context.Background(), "s")
				if err == nil || err.Error() != tt.want || v != "" {
					t.Fatalf("Get = %q, %v\nwant error %q", v, err, tt.want)
				}
				if errors.Is(err, notify.ErrNoSecret) != tt.noSecret {
					t.Fatalf("errors.Is(%v, ErrNoSecret) = %v", err, !tt.noSecret)
				}
				if strings.Contains(fmt.Sprintf("%+v %#v", err, err), "SECRET") || strings.Contains(fmt.Sprintf("%+v", errors.Unwrap(err)), "SECRET") {
					t.Fatalf("the error holds the value: %+v", err)
				}
			}
			if n := len(sm.calls()); n != tt.wantCalls {
				t.Fatalf("%d calls, want %d", n, tt.wantCalls)
			}
		})
	}
	// A value at the limit is served.
	sm := newStandIn(t)
	sm.set(prefix+"s", valueAnswer(prefix+"s", long[:notify.MaxSecretBytes]))
	if v, err := newSecrets(t, sm, 0).Get(context.Background(), "s"); err != nil || len(v) != notify.MaxSecretBytes {
		t.Fatalf("a value of %d bytes: %d bytes, %v", notify.MaxSecretBytes, len(v), err)
	}
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	sm := newStandIn(t)
	s := newSecrets(t, sm, 0)
	for _, name := range []string{"", "a b", "slack\ntoken", "clé", "a*", strings.Repeat("n", MaxSecretIDBytes-len(prefix)+1)} {
		if _, err := s.Get(context.Background(), name); !errors.Is(err, notify.ErrNoSecret) || !strings.Contains(err.Error(), "not a Secrets Manager name") {
			t.Errorf("Get(%q) = %v", name, err)
		}
	}
	if n := len(sm.calls()); n != 0 {
		t.Fatalf("%d calls for names that cannot be secrets", n)
	}
	long := strings.Repeat("n", MaxSecretIDBytes-len(prefix))
	if _, err := s.Get(context.Background(), long); !errors.Is(err, notify.ErrNoSecret) || strings.Contains(err.Error(), "not a Secrets Manager name") {
		t.Fatalf("Get of a name of the longest length: %v, want it asked for (and not found)", err)
	}
}

// TestConcurrentGets: callers asking for a name at once make one call;
// one that gives up waiting does not stop it, and the value it brings is
// cached for the next.
func TestConcurrentGets(t *testing.T) {
	t.Parallel()
	sm := newStandIn(t)
	sm.set(prefix+"a", valueAnswer(prefix+"a", "value-a"))
	sm.set(prefix+"b", valueAnswer(prefix+"b", "value-b"))
	sm.gate = make(chan struct{})
	s := newSecrets(t, sm, 0)

	impatient, cancel := context.WithCancel(context.Background())
	impatientErr := make(chan error, 1)
	go func() { _, err := s.Get(impatient, "a"); impatientErr <- err }()
	var wg sync.WaitGroup
	for i := range 16 {
		name := []string{"a", "b"}[i%2]
		wg.Go(func() {
			if v, err := s.Get(context.Background(), name); err != nil || v != "value-"+name {
				t.Errorf("Get(%q) = %q, %v", name, v, err)
			}
		})
	}
	for deadline := time.Now().Add(5 * time.Second); len(sm.calls()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("calls %q", sm.calls())
		}
	}
	cancel()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) || err.Error() != `secret "a": context canceled` {
		t.Fatalf("the impatient caller: %v", err)
	}
	close(sm.gate)
	wg.Wait()
	if v, err := s.Get(context.Background(), "a"); err != nil || v != "value-a" {
		t.Fatalf("Get after: %q, %v", v, err)
	}
	got := sm.calls()
	slices.Sort(got)
	if !slices.Equal(got, []string{prefix + "a", prefix + "b"}) {
		t.Fatalf("calls %q, want one per name", got)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c := secretsmanager.New(secretsmanager.Options{Region: testRegion})
	for _, tt := range []struct {
		name   string
		client API
		prefix string
		ttl    time.Duration
		want   string
	}{
		{"no client", nil, "p/", 0, "awssecrets: no Secrets Manager client"},
		{"no prefix", c, "", 0, "awssecrets: no secret name prefix: every secret Warden reads is under one"},
		{"bad prefix", c, "warden prod/", 0, `awssecrets: prefix "warden prod/": not a secret name prefix (letters, digits and /_+=.@-, under 512 bytes)`},
		{"negative TTL", c, "p/", -time.Second, "awssecrets: cache TTL -1s is negative"},
	} {
		if _, err := New(tt.client, tt.prefix, tt.ttl); err == nil || err.Error() != tt.want {
			t.Errorf("%s: New = %v, want %q", tt.name, err, tt.want)
		}
	}
	s, err := New(c, "warden/prod/", 0)
	if err != nil || s.ttl != DefaultTTL || s.SecretID("slack-bot-token") != "warden/prod/slack-bot-token" {
		t.Fatalf("New: %v", err)
	}
}

// caller is the signed caller of the stand-in, as the functions use it.
func (s *standIn) caller() *Caller {
	return &Caller{Region: testRegion, Endpoint: s.srv.URL,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "test"}, nil
		})}
}

// TestCallerAnswersAsTheSDK: for every kind of answer, Secrets over the
// signed Caller serves or refuses exactly as over the SDK's client, and
// the stand-in takes the Caller's requests as Secrets Manager's protocol,
// signed (it checks each one).
func TestCallerAnswersAsTheSDK(t *testing.T) {
	t.Parallel()
	id := prefix + "s"
	for name, a := range map[string]answer{
		"value":            valueAnswer(id, "xoxb-1234-abcd"),
		"a value of 4 KiB": valueAnswer(id, strings.Repeat("v", notify.MaxSecretBytes)),
		"too large":        valueAnswer(id, strings.Repeat("v", notify.MaxSecretBytes+1)),
		"not found":        errorAnswer("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
		"namespaced code":  errorAnswer("com.amazonaws.secretsmanager#DecryptionFailure", "KMS refused"),
		"access denied":    errorAnswer("AccessDeniedException", "User is not authorized"),
		"binary":           {200, `{"Name":"warden/test/s","SecretBinary":"eG94Yi1TRUNSRVQ="}`},
		"no value":         {200, `{"Name":"warden/test/s"}`},
		"cut short":        {200, `{"Name":"warden/test/s","SecretString":"xox`},
		"not JSON":         {200, `xoxb`},
		"empty":            valueAnswer(id, ""),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sm := newStandIn(t)
			sm.set(id, a)
			sdk, err := New(sm.client(), prefix, 0)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := New(sm.caller(), prefix, 0)
			if err != nil {
				t.Fatal(err)
			}
			v1, e1 := sdk.Get(context.Background(), "s")
			v2, e2 := signed.Get(context.Background(), "s")
			if v1 != v2 || fmt.Sprint(e1) != fmt.Sprint(e2) || errors.Is(e1, notify.ErrNoSecret) != errors.Is(e2, notify.ErrNoSecret) {
				t.Errorf("SDK: %q, %v\nCaller: %q, %v", v1, e1, v2, e2)
			}
		})
	}
}

// TestCallerRetries: a 5xx answer is tried again, twice at most.
func TestCallerRetries(t *testing.T) {
	t.Parallel()
	sm := newStandIn(t)
	sm.set(prefix+"s", answer{http.StatusServiceUnavailable, `{"__type":"InternalServiceError","message":"try again"}`})
	s, err := New(sm.caller(), prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "s"); err == nil || !strings.Contains(err.Error(), "InternalServiceError: try again") {
		t.Errorf("Get: %v", err)
	}
	if n := len(sm.calls()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}
