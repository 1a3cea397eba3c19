// Package awstest is a stand-in, on 127.0.0.1, for the bits of AWS that
// Warden's credential broker uses and that its tests need to see enforced:
// STS (AssumeRole, GetCallerIdentity), IAM role inline policies
// (PutRolePolicy, GetRolePolicy, DeleteRolePolicy) and an S3 GetObject
// that decides with the issued session's policies. It is a fake, because
// none of these runs here: it answers in AWS's documented wire formats
// (the query protocol's XML; S3's REST XML) so that the SDK's clients can
// be pointed at it, and it checks every request's SigV4 signature with
// package sigv4test, computed from the specification.
//
// What it models, and what it does not:
//   - The broker's own credentials (New's) may call every action but S3.
//     Credentials it issues may call GetCallerIdentity and S3 GetObject.
//   - A role's permissions are its inline policies, as in IAM: put one
//     that allows what its sessions may do. A session may do what both
//     the role's policies and its session policy allow, and nothing that
//     either denies. Decisions are package iameval's, over the condition
//     keys aws:SourceIdentity, aws:PrincipalTag/KEY (the session tags),
//     aws:TokenIssueTime, aws:CurrentTime, aws:EpochTime,
//     aws:PrincipalArn, aws:PrincipalAccount and aws:userid. Revocation
//     takes effect at once (AWS can take minutes).
//   - The packed size of a session policy and tags is modelled as their
//     length in characters against a limit (SetPackedLimit); AWS packs
//     them in a binary form of its own.
//   - Trust policies are not modelled: the broker may assume any role
//     made with CreateRole, with a source identity and tags, and no other.
//   - S3 keys must be made of unreserved characters and /: sigv4test
//     encodes paths the way of services other than S3, which agrees with
//     S3's signing only for those.
package awstest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy/iameval"
	"github.com/wardenhq/warden/shared/sigv4test"
)

// The stand-in's account, and the identity its broker credentials have.
const (
	AccountID = "123456789012"
	BrokerARN = "arn:aws:sts::" + AccountID + ":assumed-role/warden-broker/warden-broker"
	// IAMRegion is the region IAM requests are signed for.
	IAMRegion = "us-east-1"
	// DefaultPackedLimit is the packed-size limit until SetPackedLimit.
	DefaultPackedLimit = 4096
)

// RoleARN is the ARN of the stand-in's role name.
func RoleARN(name string) string { return "arn:aws:iam::" + AccountID + ":role/" + name }

// Call is a query-protocol request the stand-in took, signed or not.
type Call struct {
	// Action is the form's Action; Params the whole form (Action and
	// Version included) and Body its text, as received.
	Action string
	Params url.Values
	Body   string
	// AccessKeyID is the key the request was signed with, if any.
	AccessKeyID string
}

// Session is a set of credentials the stand-in issued.
type Session struct {
	AccessKeyID, RoleARN, SessionName, SourceIdentity string
	// Tags are the session tags, by key.
	Tags              map[string]string
	TransitiveTagKeys []string
	// Policy is the session policy, if one was passed.
	Policy             string
	Issued, Expiration time.Time
}

// Server is the stand-in.
type Server struct {
	// URL is the endpoint of every service: http://127.0.0.1:PORT.
	URL string

	t                           testing.TB
	accessKeyID, secret, region string

	mu          sync.Mutex
	offset      time.Duration // added to the time of day: Advance
	packedLimit int
	calls       []Call
	roles       map[string]*role    // by name
	sessions    map[string]*session // by access key ID
	objects     map[string][]byte   // by bucket/key
}

type role struct {
	name       string
	maxSession time.Duration
	// The inline policies, as put and as parsed.
	policies map[string]string
	parsed   map[string]*iameval.Document
}

type session struct {
	Session
	secret, token string
	role          *role
	policy        *iameval.Document // nil without a session policy
}

// New starts a stand-in on 127.0.0.1 for the test, that takes the
// broker's requests signed with accessKeyID and secret, for region (STS,
// S3) or us-east-1 (IAM). If the broker's requests carry a session token,
// it is not checked.
func New(t testing.TB, accessKeyID, secret, region string) *Server {
	s := &Server{t: t, accessKeyID: accessKeyID, secret: secret, region: region, packedLimit: DefaultPackedLimit,
		roles: map[string]*role{}, sessions: map[string]*session{}, objects: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// CreateRole makes a role without policies, whose sessions may last up to
// maxSession (zero: an hour, IAM's default), and returns its ARN.
func (s *Server) CreateRole(name string, maxSession time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if maxSession == 0 {
		maxSession = time.Hour
	}
	s.roles[name] = &role{name: name, maxSession: maxSession, policies: map[string]string{}, parsed: map[string]*iameval.Document{}}
	return RoleARN(name)
}

// RolePolicy is the inline policy policyName of role name, as put.
func (s *Server) RolePolicy(name, policyName string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[name]
	if !ok {
		return "", false
	}
	doc, ok := r.policies[policyName]
	return doc, ok
}

// RolePolicies are the inline policies of role name, by policy name, as
// put.
func (s *Server) RolePolicies(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[name]
	if !ok {
		return nil
	}
	return maps.Clone(r.policies)
}

// keyRE is what S3 keys may be made of here (see the package comment).
var keyRE = regexp.MustCompile(`^[A-Za-z0-9._~/-]+$`)

// PutObject stores body under bucket and key for GetObject.
func (s *Server) PutObject(bucket, key string, body []byte) {
	if !keyRE.MatchString(bucket) || strings.Contains(bucket, "/") || !keyRE.MatchString(key) {
		s.t.Fatalf("awstest: PutObject %q %q: bucket and key must be unreserved characters (and / in keys)", bucket, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[bucket+"/"+key] = append([]byte(nil), body...)
}

// SetPackedLimit sets the characters of session policy and tags
// (keys and values) that AssumeRole takes; PackedPolicySize is their
// percentage of it.
func (s *Server) SetPackedLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packedLimit = n
}

// Advance moves the stand-in's clock on by d: credentials expire, issue
// times and aws:CurrentTime move. The requests' signing times are not
// checked against it.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Now is the stand-in's time.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset).UTC().Truncate(time.Second) }

// Calls are the query-protocol requests taken, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = cloneValues(c.Params)
		out[i] = c
	}
	return out
}

// Session is the session of the issued accessKeyID.
func (s *Server) Session(accessKeyID string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[accessKeyID]
	if !ok {
		return Session{}, false
	}
	out := sess.Session
	out.Tags = make(map[string]string, len(sess.Tags))
	for k, v := range sess.Tags {
		out.Tags[k] = v
	}
	out.TransitiveTagKeys = append([]string(nil), sess.TransitiveTagKeys...)
	return out, true
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.t.Errorf("awstest: read %s %s: %v", r.Method, r.URL, err)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/":
		s.serveQuery(w, r, body)
	case r.Method == http.MethodGet && strings.Count(r.URL.Path, "/") >= 2:
		s.serveGetObject(w, r, body)
	default:
		s.t.Errorf("awstest: %s %s: want POST / (STS, IAM) or GET /BUCKET/KEY (S3)", r.Method, r.URL)
		s.s3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
}

// authError is a refusal of a request's credentials or signature.
type authError struct {
	status        int
	code, message string
}

var credentialRE = regexp.MustCompile(`Credential=([^/,\s]+)/`)

// authenticate checks r's signature for service and region, and returns
// the issued session that signed it, or nil for the broker. Refusals are
// S3's for service "s3", else STS's and IAM's. s.mu is held.
func (s *Server) authenticate(r *http.Request, body []byte, service, region string, mustSign ...string) (*session, *authError) {
	s3 := service == "s3"
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		if s3 {
			return nil, &authError{403, "AccessDenied", "Access Denied"}
		}
		return nil, &authError{403, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	key := m[1]
	creds := sigv4test.Credentials{AccessKey: key, Region: region, Service: service}
	var who *session
	if key == s.accessKeyID {
		creds.SecretKey = s.secret
		if r.Header.Get("X-Amz-Security-Token") != "" {
			mustSign = append(mustSign, "x-amz-security-token")
		}
	} else if sess, ok := s.sessions[key]; ok {
		who = sess
		creds.SecretKey = sess.secret
		mustSign = append(mustSign, "x-amz-security-token")
		if r.Header.Get("X-Amz-Security-Token") != sess.token {
			if s3 {
				return nil, &authError{400, "InvalidToken", "The provided token is malformed or otherwise invalid."}
			}
			return nil, &authError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
		}
	} else {
		if s3 {
			return nil, &authError{403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
		}
		return nil, &authError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if err := sigv4test.Verify(r, body, creds, mustSign...); err != nil {
		if s3 {
			return nil, &authError{403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method. (" + err.Error() + ")"}
		}
		return nil, &authError{403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details. (" + err.Error() + ")"}
	}
	if who != nil && !s.now().Before(who.Expiration) {
		if s3 {
			return nil, &authError{400, "ExpiredToken", "The provided token has expired."}
		}
		return nil, &authError{403, "ExpiredToken", "The security token included in the request is expired"}
	}
	return who, nil
}

// serveQuery serves STS's and IAM's actions.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		s.t.Errorf("awstest: POST / of %q, want a form (application/x-www-form-urlencoded)", r.Header.Get("Content-Type"))
		s.queryError(w, "sts", 400, "MalformedInput", "not a form")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.t.Errorf("awstest: form %q: %v", body, err)
		s.queryError(w, "sts", 400, "MalformedInput", err.Error())
		return
	}
	action := form.Get("Action")
	call := Call{Action: action, Params: form, Body: string(body)}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		call.AccessKeyID = m[1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)

	service, version, region := "sts", "2011-06-15", s.region
	switch action {
	case "AssumeRole", "GetCallerIdentity":
	case "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy", "ListRolePolicies":
		service, version, region = "iam", "2010-05-08", IAMRegion
	default:
		s.t.Errorf("awstest: action %q is not modelled", action)
		s.queryError(w, service, 400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", action, form.Get("Version")))
		return
	}
	if v := form.Get("Version"); v != version {
		s.t.Errorf("awstest: %s of version %q, want %q", action, v, version)
		s.queryError(w, service, 400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", action, v))
		return
	}
	if bad := unknownParams(action, form); bad != "" {
		s.t.Errorf("awstest: %s with parameter %q, which the stand-in does not model", action, bad)
		s.queryError(w, service, 400, "InvalidParameterValue", "the stand-in does not model parameter "+bad)
		return
	}
	who, aerr := s.authenticate(r, body, service, region, "content-type")
	if aerr != nil {
		s.queryError(w, service, aerr.status, aerr.code, aerr.message)
		return
	}
	if action != "GetCallerIdentity" && who != nil {
		s.queryError(w, service, 403, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: %s:%s", who.arn(), service, action))
		return
	}
	switch action {
	case "AssumeRole":
		s.assumeRole(w, form)
	case "GetCallerIdentity":
		s.getCallerIdentity(w, who)
	case "PutRolePolicy":
		s.putRolePolicy(w, form)
	case "GetRolePolicy":
		s.getRolePolicy(w, form)
	case "DeleteRolePolicy":
		s.deleteRolePolicy(w, form)
	case "ListRolePolicies":
		s.listRolePolicies(w, form)
	}
}

// params are the parameters each action may have, besides Action and
// Version; "#" stands for a member number.
var params = map[string][]string{
	"AssumeRole": {"RoleArn", "RoleSessionName", "Policy", "DurationSeconds", "SourceIdentity", "ExternalId",
		"Tags.member.#.Key", "Tags.member.#.Value", "TransitiveTagKeys.member.#"},
	"GetCallerIdentity": {},
	"PutRolePolicy":     {"RoleName", "PolicyName", "PolicyDocument"},
	"GetRolePolicy":     {"RoleName", "PolicyName"},
	"DeleteRolePolicy":  {"RoleName", "PolicyName"},
	"ListRolePolicies":  {"RoleName", "Marker", "MaxItems"},
}

var memberRE = regexp.MustCompile(`\.member\.[1-9][0-9]*(\.|$)`)

// unknownParams returns a parameter of form that action does not have.
func unknownParams(action string, form url.Values) string {
	for k := range form {
		if k == "Action" || k == "Version" {
			continue
		}
		known := false
		for _, p := range params[action] {
			if memberRE.ReplaceAllString(k, ".member.#$1") == p {
				known = true
			}
		}
		if !known {
			return k
		}
	}
	return ""
}

// newRequestID is a request ID in AWS's form.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// randomString is n characters of alphabet, from crypto/rand.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomBase64(bytes int) string {
	b := make([]byte, bytes)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// namespaces of the services' answers.
var namespaces = map[string]string{
	"sts": "https://sts.amazonaws.com/doc/2011-06-15/",
	"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}

// queryError answers with the query protocol's <ErrorResponse>.
func (s *Server) queryError(w http.ResponseWriter, service string, status int, code, message string) {
	type errorBody struct {
		Type, Code, Message string
	}
	s.writeXML(w, status, struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     errorBody
		RequestID string `xml:"RequestId"`
	}{NS: namespaces[service], Error: errorBody{"Sender", code, message}, RequestID: newRequestID()})
}

// answer writes the query protocol's <{action}Response> with result, a
// struct whose XMLName is {action}Result, or without if result is nil.
func (s *Server) answer(w http.ResponseWriter, service, action string, result any) {
	s.writeXML(w, http.StatusOK, struct {
		XMLName   xml.Name
		NS        string `xml:"xmlns,attr"`
		Result    any
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}{XMLName: xml.Name{Local: action + "Response"}, NS: namespaces[service], Result: result, RequestID: newRequestID()})
}

func (s *Server) writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		s.t.Errorf("awstest: encode an answer: %v", err)
		status, out = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(out)
}
