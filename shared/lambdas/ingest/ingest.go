// Package ingest is the ingest function's handler: the agent runtime
// role's AWS calls, as CloudTrail recorded them, appended to the audit
// trail. It is apart from package lambdas so that the other functions do
// not link the identity store.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/identitystore"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/textfmt"
)

// MaxCloudTrailDetail bounds the detail of an event the ingest function
// takes (EventBridge delivers at most 256 KB).
const MaxCloudTrailDetail = 256 << 10

// maxCallArgs bounds the request parameters an aws.call record keeps.
const maxCallArgs = 4 << 10

// Sessions reads a session by ID: identity.Service.
type Sessions interface {
	Session(ctx context.Context, id string) (identity.Session, error)
}

// Handler is the ingest function's handler: each AWS call the agent runtime
// role's credentials made, as CloudTrail recorded it and EventBridge
// delivered it, appended to the audit trail as an aws.call record of the
// Warden session its source identity names, so that a session's replay
// shows its AWS calls beside its tool calls. The record's ID is derived
// from CloudTrail's event ID: a redelivered event is the same record.
type Handler struct {
	Audit    audit.Sink
	Sessions Sessions
	Redactor *audit.Redactor
	Log      *slog.Logger
}

// cloudTrailCall is the part of a CloudTrail event's detail a record keeps.
type cloudTrailCall struct {
	EventID      string    `json:"eventID"`
	EventTime    time.Time `json:"eventTime"`
	EventSource  string    `json:"eventSource"`
	EventName    string    `json:"eventName"`
	AWSRegion    string    `json:"awsRegion"`
	SourceIP     string    `json:"sourceIPAddress"`
	ErrorCode    string    `json:"errorCode"`
	ErrorMessage string    `json:"errorMessage"`
	UserIdentity struct {
		SessionContext struct {
			SourceIdentity string `json:"sourceIdentity"`
			SessionIssuer  struct {
				ARN string `json:"arn"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	Resources         []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
}

// Handle is the Lambda handler. An event that is not a CloudTrail call of
// a Warden session is refused (an error: EventBridge retries it, then drops
// it, and the function's error alarm fires); one whose record cannot be
// written is an error too, so that EventBridge retries it.
func (h *Handler) Handle(ctx context.Context, ev events.CloudWatchEvent) error {
	c, err := ParseCloudTrailCall(ev)
	if err != nil {
		return err
	}
	rec := h.record(ctx, c)
	if _, err := h.Audit.Append(ctx, rec); err != nil {
		return fmt.Errorf("ingest: append the record of CloudTrail event %s: %w", c.EventID, err)
	}
	return nil
}

// ParseCloudTrailCall reads an EventBridge event as a CloudTrail call of a
// Warden session: its size, its detail type, an event ID, a time, a
// source, a name and the source identity the broker set.
func ParseCloudTrailCall(ev events.CloudWatchEvent) (cloudTrailCall, error) {
	var c cloudTrailCall
	switch {
	case ev.DetailType != awsconfig.CloudTrailDetailType:
		return c, fmt.Errorf("ingest: event %s is a %q, not a %q", ev.ID, ev.DetailType, awsconfig.CloudTrailDetailType)
	case len(ev.Detail) > MaxCloudTrailDetail:
		return c, fmt.Errorf("ingest: event %s: detail of %d bytes, over %d", ev.ID, len(ev.Detail), MaxCloudTrailDetail)
	}
	if err := json.Unmarshal(ev.Detail, &c); err != nil {
		return c, fmt.Errorf("ingest: event %s: %w", ev.ID, err)
	}
	switch {
	case c.EventID == "" || len(c.EventID) > 128:
		return c, fmt.Errorf("ingest: event %s has no CloudTrail event ID", ev.ID)
	case c.EventTime.IsZero():
		return c, fmt.Errorf("ingest: CloudTrail event %s has no time", c.EventID)
	case c.EventSource == "" || c.EventName == "":
		return c, fmt.Errorf("ingest: CloudTrail event %s names no call", c.EventID)
	case !identity.ValidID(c.UserIdentity.SessionContext.SourceIdentity):
		return c, fmt.Errorf("ingest: CloudTrail event %s has no Warden session as its source identity", c.EventID)
	}
	return c, nil
}

// record is the call as an audit record.
func (h *Handler) record(ctx context.Context, c cloudTrailCall) audit.Record {
	id := sha256.Sum256([]byte("cloudtrail\x00" + c.EventID))
	service := strings.TrimSuffix(c.EventSource, ".amazonaws.com")
	rec := audit.Record{ID: hex.EncodeToString(id[:16]), Time: c.EventTime.UTC(), Code: audit.AWSCall,
		Session: c.UserIdentity.SessionContext.SourceIdentity, Kind: "aws", Action: service + ":" + c.EventName,
		Ref: c.EventID, Status: "ok"}
	if len(c.Resources) > 0 {
		rec.Resource = c.Resources[0].ARN
	}
	if c.ErrorCode != "" {
		rec.Status, rec.Reason = c.ErrorCode, textfmt.Truncate(c.ErrorMessage, 512)
	}
	args := map[string]any{"region": c.AWSRegion, "source_ip": c.SourceIP}
	if len(c.RequestParameters) > 0 && len(c.RequestParameters) <= maxCallArgs {
		var params any
		if json.Unmarshal(c.RequestParameters, &params) == nil {
			args["request"] = params
		}
	} else if len(c.RequestParameters) > maxCallArgs {
		args["request_truncated"] = fmt.Sprintf("%d bytes", len(c.RequestParameters))
	}
	rec.Args = h.Redactor.JSON(args)
	sess, err := h.Sessions.Session(ctx, rec.Session)
	switch {
	case err == nil:
		rec.Project, rec.Agent = sess.Project, sess.Agent
	case errors.Is(err, identity.ErrNotFound):
		rec.Reason = strings.TrimSpace(rec.Reason + " (the session is not known to this Warden)")
	default:
		h.Log.Error("ingest: read the session of a call", "session", rec.Session, "err", err)
	}
	return rec
}

// New returns the ingest function's handler: the audit table, and the
// identity table's sessions. CloudTrail removes the secrets it knows of
// from request parameters; what else looks like one is removed without a
// correlating tag (the function holds no redaction key).
func New(e lambdas.Env) *Handler {
	db := dynamo.New(e.DynamoDB(), e.Tables())
	return &Handler{Audit: db.Audit(), Sessions: identity.NewService(identitystore.New(db), nil), Redactor: audit.NewRedactor(nil), Log: e.Log}
}
