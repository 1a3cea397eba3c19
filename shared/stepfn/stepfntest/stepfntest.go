// Package stepfntest is a stand-in for AWS Step Functions' JSON protocol
// (awsJson1_0), for tests: it checks each request's SigV4 signature and
// shape, starts executions by name (the same name and input again is the
// same execution; another input is ExecutionAlreadyExists), hands out the
// task token of an execution's waiting task (as the state machine would,
// reaching a .waitForTaskToken task), and takes one answer per token.
package stepfntest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wardenhq/warden/shared/sigv4test"
)

// Credentials and region the stand-in takes.
const (
	AccessKey = "AKIDSTEPFNTEST"
	SecretKey = "stepfn-test-secret"
	Region    = "eu-central-1"
)

// Start is a StartExecution the stand-in took.
type Start struct {
	StateMachineArn, Name, Input string
}

// Answer is a SendTaskSuccess or SendTaskFailure the stand-in took.
type Answer struct {
	Op, TaskToken, Output, Error, Cause string
}

// Server is the stand-in.
type Server struct {
	URL string
	// The credentials and region requests must be signed with.
	accessKey, secretKey, region string

	t       testing.TB
	mu      sync.Mutex
	starts  []Start
	byName  map[string]Start
	tokens  map[string]string // token -> execution name
	answers []Answer
}

// New starts a stand-in on 127.0.0.1 for the test, taking requests
// signed with AccessKey and SecretKey for Region.
func New(t testing.TB) *Server { return NewFor(t, AccessKey, SecretKey, Region) }

// NewFor starts a stand-in that takes requests signed with the given
// credentials for region (a function's, under the emulator).
func NewFor(t testing.TB, accessKey, secretKey, region string) *Server {
	s := &Server{t: t, accessKey: accessKey, secretKey: secretKey, region: region, byName: map[string]Start{}, tokens: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Starts are the executions started, in order (a repeated start too).
func (s *Server) Starts() []Start {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Start(nil), s.starts...)
}

// Answers are the task answers taken, in order.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Token is the task token of the named execution's waiting task.
func (s *Server) Token(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := fmt.Sprintf("AAAAKgAAAAIAAAAAAAAAA-%s-%d", name, len(s.tokens))
	s.tokens[token] = name
	return token
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.swf.service.v2.model#" + code, "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		s.t.Errorf("step functions stand-in: %s %s (%s), want POST / of application/x-amz-json-1.0", r.Method, r.URL, r.Header.Get("Content-Type"))
		fail(w, 400, "SerializationException", "not the JSON protocol")
		return
	}
	creds := sigv4test.Credentials{AccessKey: s.accessKey, SecretKey: s.secretKey, Region: s.region, Service: "states"}
	if err := sigv4test.Verify(r, body, creds, "x-amz-target", "content-type"); err != nil {
		s.t.Errorf("step functions stand-in: %v", err)
		fail(w, 403, "InvalidSignatureException", err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op := r.Header.Get("X-Amz-Target"); op {
	case "AWSStepFunctions.StartExecution":
		var in Start
		if err := dec.Decode(&in); err != nil || in.StateMachineArn == "" || in.Name == "" {
			s.t.Errorf("step functions stand-in: StartExecution %s: %v", body, err)
			fail(w, 400, "ValidationException", "bad StartExecution")
			return
		}
		s.starts = append(s.starts, in)
		if prev, ok := s.byName[in.Name]; ok && prev != in {
			fail(w, 400, "ExecutionAlreadyExists", "Execution Already Exists: '"+in.Name+"'")
			return
		}
		s.byName[in.Name] = in
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprintf(w, `{"executionArn":"arn:aws:states:%s:123456789012:execution:approvals:%s","startDate":1.7641e9}`, s.region, in.Name)
	case "AWSStepFunctions.SendTaskSuccess", "AWSStepFunctions.SendTaskFailure":
		var in struct {
			TaskToken string `json:"taskToken"`
			Output    string `json:"output"`
			Error     string `json:"error"`
			Cause     string `json:"cause"`
		}
		if err := dec.Decode(&in); err != nil || in.TaskToken == "" {
			s.t.Errorf("step functions stand-in: %s %s: %v", op, body, err)
			fail(w, 400, "ValidationException", "bad "+op)
			return
		}
		if _, ok := s.tokens[in.TaskToken]; !ok {
			fail(w, 400, "TaskTimedOut", "Task Timed Out: '"+in.TaskToken+"'")
			return
		}
		delete(s.tokens, in.TaskToken)
		s.answers = append(s.answers, Answer{Op: op[len("AWSStepFunctions."):], TaskToken: in.TaskToken, Output: in.Output, Error: in.Error, Cause: in.Cause})
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, "{}")
	default:
		s.t.Errorf("step functions stand-in: unknown operation %q", op)
		fail(w, 400, "UnknownOperationException", op)
	}
}
