package server

import (
	"net/http"
	"strconv"

	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/hooks"
)

// AWSCredentialsPath is where an agent's session asks for AWS credentials.
const AWSCredentialsPath = "/v1/aws/credentials"

// AWSStatus is the answer of GET /v1/aws: whether this Warden issues AWS
// credentials (agent setup writes an AWS profile only then).
type AWSStatus struct {
	Broker bool `json:"broker"`
}

func (s *Server) awsStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, AWSStatus{Broker: s.Broker != nil})
}

// awsCredentials issues AWS credentials to the session of the bearer
// token, in credential_process's format: the session's (an empty body), or
// one action's ({"action": "s3:DeleteObject", "resource": "arn:…"}). A
// request that waits on an approval is refused with 403, the approval's
// ID in X-Warden-Approval and in the body.
func (s *Server) awsCredentials(w http.ResponseWriter, r *http.Request) {
	if s.Broker == nil {
		fail(w, http.StatusNotImplemented, "broker_off",
			"the AWS credential broker is off: this Warden has no runtime role to issue credentials of (warden serve --aws-role-arn, with AWS credentials)")
		return
	}
	var req broker.Request
	if !decode(w, r, &req) {
		return
	}
	creds, ref := s.Broker.Issue(r.Context(), hooks.BearerToken(r), req)
	if ref != nil {
		if ref.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ref.RetryAfter.Seconds()+0.999)))
		}
		if ref.Approval != "" {
			w.Header().Set(hooks.ApprovalHeader, ref.Approval)
			writeJSON(w, ref.Status, struct {
				apiError
				Approval string `json:"approval"`
			}{apiError{Error: ref.Message, Code: "approval_pending"}, ref.Approval})
			return
		}
		fail(w, ref.Status, "refused", "%s", ref.Message)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, creds)
}
