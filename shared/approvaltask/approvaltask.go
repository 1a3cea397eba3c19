// Package approvaltask is the approvals function's handler: the tasks of
// the approvals state machine (AWS Step Functions), which waits for each
// approval's decision until its timeout.
//
//   - "wait" (a .waitForTaskToken task): the task's token is stored with
//     the approval, and whoever decides it answers the task (Answer); an
//     approval decided before the task began is answered at once.
//   - "expire" (the wait timed out): a still pending approval expires, and
//     the expiry is recorded.
package approvaltask

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/stepfn"
)

// Steps of the state machine's tasks.
const (
	StepWait   = "wait"
	StepExpire = "expire"
)

// Event is the payload the state machine sends the function.
type Event struct {
	Step      string `json:"step"`
	Approval  string `json:"approval"`
	TaskToken string `json:"task_token,omitempty"`
}

// Input is the input of an approval's execution: its approval and how
// long it waits.
type Input struct {
	Approval       string `json:"approval"`
	TimeoutSeconds int64  `json:"timeout_seconds"`
}

// Outcome is what the waiting task is answered with.
type Outcome struct {
	State string `json:"state"`
	By    string `json:"by,omitempty"`
}

// Tasks answers waiting tasks: stepfn.Client.
type Tasks interface {
	SendTaskSuccess(ctx context.Context, token string, output any) error
}

// Handler handles the state machine's tasks.
type Handler struct {
	Approvals *approval.Service
	Tasks     Tasks
	Log       *slog.Logger
}

// Handle is the Lambda handler. An error fails the task, and with it the
// execution (the state machine retries only Lambda's own transient
// errors), which raises the stack's alarm; the approval then expires when
// next touched.
func (h *Handler) Handle(ctx context.Context, ev Event) error {
	if !approval.ValidID(ev.Approval) {
		return fmt.Errorf("approvals task: %q is not an approval ID", ev.Approval)
	}
	switch ev.Step {
	case StepWait:
		if ev.TaskToken == "" {
			return fmt.Errorf("approvals task %s: no task token", ev.Approval)
		}
		a, pending, err := h.Approvals.Waiting(ctx, ev.Approval, ev.TaskToken)
		if err != nil || pending {
			return err
		}
		// Decided before the task began: answer it now.
		return Answer(ctx, h.Tasks, a, ev.TaskToken)
	case StepExpire:
		_, err := h.Approvals.Expire(ctx, ev.Approval)
		return err
	}
	return fmt.Errorf("approvals task %s: unknown step %q", ev.Approval, ev.Step)
}

// OnDecided is an approval.Service's Decided hook: each decision answers
// the approval's waiting task; a failure is logged (the approval expires
// in Step Functions at its timeout all the same).
func OnDecided(tasks Tasks, log *slog.Logger) func(context.Context, approval.Approval) {
	return func(ctx context.Context, a approval.Approval) {
		if err := Answer(ctx, tasks, a, ""); err != nil {
			log.Error("answer the approval's waiting task", "approval", a.ID, "err", err)
		}
	}
}

// Answer answers the task waiting on a decided approval (with token, or
// the approval's own); a task that no longer waits is not an error: a
// second decision, or one after the timeout.
func Answer(ctx context.Context, tasks Tasks, a approval.Approval, token string) error {
	if token == "" {
		token = a.TaskToken
	}
	if token == "" || a.State == approval.Pending {
		return nil
	}
	err := tasks.SendTaskSuccess(ctx, token, Outcome{State: string(a.State), By: a.DecidedBy})
	if errors.Is(err, stepfn.ErrTaskEnded) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("answer the task of approval %s: %w", a.ID, err)
	}
	return nil
}
