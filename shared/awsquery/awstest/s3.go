package awstest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/iameval"
)

// serveGetObject serves S3's GetObject, path style: GET /BUCKET/KEY,
// signed with credentials the stand-in issued.
func (s *Server) serveGetObject(w http.ResponseWriter, r *http.Request, body []byte) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !keyRE.MatchString(bucket) || key == "" || !keyRE.MatchString(key) || r.URL.EscapedPath() != r.URL.Path {
		s.t.Errorf("awstest: GET %s: the stand-in serves /BUCKET/KEY with unreserved characters (and / in keys) only", r.URL.EscapedPath())
		s.s3Error(w, http.StatusBadRequest, "InvalidRequest", "the stand-in serves keys of unreserved characters only")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	who, aerr := s.authenticate(r, body, "s3", s.region, "x-amz-content-sha256")
	if aerr != nil {
		s.s3Error(w, aerr.status, aerr.code, aerr.message)
		return
	}
	sum := sha256.Sum256(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != hex.EncodeToString(sum[:]) && h != "UNSIGNED-PAYLOAD" {
		s.s3Error(w, http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		return
	}
	if who == nil || !s.allowed(who, "s3:GetObject", "arn:aws:s3:::"+bucket+"/"+key) {
		s.s3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	obj, ok := s.objects[bucket+"/"+key]
	if !ok {
		s.s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	etag := md5.Sum(obj)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
	w.Header().Set("ETag", `"`+hex.EncodeToString(etag[:])+`"`)
	w.Header().Set("Last-Modified", s.now().Format(http.TimeFormat))
	w.Write(obj)
}

// allowed decides a request of sess as IAM does for a role session: no
// explicit Deny in the role's policies or the session policy, an Allow in
// the role's policies and, if there is a session policy, in it too. s.mu
// is held.
func (s *Server) allowed(sess *session, action, resource string) bool {
	ctx := s.context(sess)
	roleAllows := false
	for _, doc := range sess.role.parsed {
		switch doc.Decide(action, resource, ctx) {
		case iameval.Deny:
			return false
		case iameval.Allow:
			roleAllows = true
		}
	}
	if sess.policy == nil {
		return roleAllows
	}
	return roleAllows && sess.policy.Decide(action, resource, ctx) == iameval.Allow
}

// context is the condition keys of a request by sess. s.mu is held.
func (s *Server) context(sess *session) map[string]string {
	now := s.now()
	ctx := map[string]string{
		"aws:TokenIssueTime":   sess.Issued.Format(time.RFC3339),
		"aws:CurrentTime":      now.Format(time.RFC3339),
		"aws:EpochTime":        strconv.FormatInt(now.Unix(), 10),
		"aws:PrincipalArn":     sess.RoleARN,
		"aws:PrincipalAccount": AccountID,
		"aws:userid":           roleID(sess.role.name) + ":" + sess.SessionName,
	}
	if sess.SourceIdentity != "" {
		ctx["aws:SourceIdentity"] = sess.SourceIdentity
	}
	for k, v := range sess.Tags {
		ctx["aws:PrincipalTag/"+k] = v
	}
	return ctx
}

// s3Error answers with S3's <Error>.
func (s *Server) s3Error(w http.ResponseWriter, status int, code, message string) {
	s.writeXML(w, status, struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
		HostID    string `xml:"HostId"`
	}{Code: code, Message: message, RequestID: strings.ReplaceAll(newRequestID(), "-", "")[:16], HostID: randomBase64(24)})
}
