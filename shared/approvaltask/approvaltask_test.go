package approvaltask

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/stepfn"
	"github.com/wardenhq/warden/shared/stepfn/stepfntest"
)

// setup is the handler over an approval service and Step Functions'
// stand-in, with one pending approval, a.
func setup(t *testing.T) (h *Handler, s *approval.Service, sfn *stepfntest.Server, a approval.Approval) {
	t.Helper()
	s, _, _ = approvaltest.Setup(t, &approval.MemoryStore{})
	sfn = stepfntest.New(t)
	tasks := &stepfn.Client{Region: stepfntest.Region, Endpoint: sfn.URL,
		Credentials: credentials.NewStaticCredentialsProvider(stepfntest.AccessKey, stepfntest.SecretKey, "")}
	s.Decided = func(ctx context.Context, a approval.Approval) {
		if err := Answer(ctx, tasks, a, ""); err != nil {
			t.Errorf("Answer: %v", err)
		}
	}
	a, _, err := s.Check(context.Background(), approvaltest.Push(t))
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{Approvals: s, Tasks: tasks}, s, sfn, a
}

// TestWaitThenDecide: the wait task leaves its token; the decision
// answers it with the outcome; a second decision's answer is not an
// error (the task has ended).
func TestWaitThenDecide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, s, sfn, a := setup(t)
	token := sfn.Token(a.ID)
	if err := h.Handle(ctx, Event{Step: StepWait, Approval: a.ID, TaskToken: token}); err != nil {
		t.Fatal(err)
	}
	if len(sfn.Answers()) != 0 {
		t.Fatal("the task was answered before a decision")
	}
	d, err := s.Decide(ctx, a.ID, approval.Decision{Approve: true, By: approvaltest.Lead})
	if err != nil {
		t.Fatal(err)
	}
	answers := sfn.Answers()
	var out Outcome
	if len(answers) != 1 || answers[0].Op != "SendTaskSuccess" || answers[0].TaskToken != token ||
		json.Unmarshal([]byte(answers[0].Output), &out) != nil || out != (Outcome{"approved", approvaltest.Lead}) {
		t.Errorf("answers %+v", answers)
	}
	if err := Answer(ctx, h.Tasks, d, ""); err != nil {
		t.Errorf("answering an ended task again: %v", err)
	}
}

// TestDecidedBeforeTheTask: a task that begins after the decision is
// answered at once.
func TestDecidedBeforeTheTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, s, sfn, a := setup(t)
	if _, err := s.Decide(ctx, a.ID, approval.Decision{Approve: false, By: approvaltest.Lead}); err != nil {
		t.Fatal(err)
	}
	token := sfn.Token(a.ID)
	if err := h.Handle(ctx, Event{Step: StepWait, Approval: a.ID, TaskToken: token}); err != nil {
		t.Fatal(err)
	}
	if answers := sfn.Answers(); len(answers) != 1 || answers[0].TaskToken != token || answers[0].Output != `{"state":"denied","by":"`+approvaltest.Lead+`"}` {
		t.Errorf("answers %+v", answers)
	}
}

// TestExpireAndBadEvents: the expire step expires a pending approval;
// malformed events fail the task.
func TestExpireAndBadEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, s, _, a := setup(t)
	if err := h.Handle(ctx, Event{Step: StepExpire, Approval: a.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Store.Get(ctx, a.ID); got.State != approval.Expired {
		t.Errorf("state %s", got.State)
	}
	for _, ev := range []Event{{Step: StepWait, Approval: a.ID}, {Step: "approve", Approval: a.ID}, {Step: StepExpire, Approval: "APR-x"}} {
		if err := h.Handle(ctx, ev); err == nil {
			t.Errorf("Handle(%+v) accepted", ev)
		}
	}
}

// TestApprovalEvents runs every sample of events/approvals through the
// handler, about an approval of the store (its ID put in place of the
// sample's).
func TestApprovalEvents(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "approvals", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h, s, _, a := setup(t)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev Event
			dec := json.NewDecoder(strings.NewReader(strings.ReplaceAll(string(raw), "APR-QX5VZ2M3T7K4B6NZ", a.ID)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatal(err)
			}
			if err := h.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Store.Get(ctx, a.ID)
			if ev.Step == StepWait && got.TaskToken != ev.TaskToken || ev.Step == StepExpire && got.State != approval.Expired {
				t.Errorf("after %s: %+v", ev.Step, got)
			}
		})
	}
}
