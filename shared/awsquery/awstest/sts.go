package awstest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden/policy/iameval"
)

// roleARNRE reads a role ARN of the stand-in's account: the role's name
// is its last path segment.
var roleARNRE = regexp.MustCompile(`^arn:aws:iam::` + AccountID + `:role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$`)

// nameRE is the character set of session names and source identities.
var nameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// roleID is the unique ID of a role, as in an assumed role's user ID.
func roleID(name string) string {
	return "AROA" + strings.ToUpper(fmt.Sprintf("%016x", fnv(name)))
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func (sess *session) arn() string {
	return "arn:aws:sts::" + AccountID + ":assumed-role/" + sess.role.name + "/" + sess.SessionName
}

// validationError answers STS's and IAM's ValidationError.
func (s *Server) validationError(w http.ResponseWriter, service, format string, args ...any) {
	s.queryError(w, service, http.StatusBadRequest, "ValidationError", fmt.Sprintf(format, args...))
}

// assumeRole serves AssumeRole for the broker. s.mu is held.
func (s *Server) assumeRole(w http.ResponseWriter, form url.Values) {
	arn := form.Get("RoleArn")
	m := roleARNRE.FindStringSubmatch(arn)
	var r *role
	if m != nil {
		r = s.roles[m[1]]
	}
	if r == nil {
		s.queryError(w, "sts", http.StatusForbidden, "AccessDenied",
			fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", BrokerARN, arn))
		return
	}
	name := form.Get("RoleSessionName")
	if !nameRE.MatchString(name) {
		s.validationError(w, "sts", "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length 2 to 64 and satisfy regular expression pattern: [\\w+=,.@-]*", name)
		return
	}
	duration := time.Hour
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			s.validationError(w, "sts", "1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
			return
		}
		duration = time.Duration(n) * time.Second
		if duration > r.maxSession {
			s.validationError(w, "sts", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
			return
		}
	}
	sourceIdentity := form.Get("SourceIdentity")
	if _, set := form["SourceIdentity"]; set {
		if !nameRE.MatchString(sourceIdentity) {
			s.validationError(w, "sts", "1 validation error detected: Value '%s' at 'sourceIdentity' failed to satisfy constraint: Member must have length 2 to 64 and satisfy regular expression pattern: [\\w+=,.@-]*", sourceIdentity)
			return
		}
		if strings.HasPrefix(strings.ToLower(sourceIdentity), "aws:") {
			s.validationError(w, "sts", "SourceIdentity must not start with 'aws:'")
			return
		}
	}
	policyText := form.Get("Policy")
	var policy *iameval.Document
	if _, set := form["Policy"]; set {
		if n := utf8.RuneCountInString(policyText); n < 1 || n > 2048 {
			s.validationError(w, "sts", "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length between 1 and 2048")
			return
		}
		var err error
		if policy, err = iameval.Parse([]byte(policyText)); err != nil {
			s.queryError(w, "sts", http.StatusBadRequest, "MalformedPolicyDocument", "The policy is not in the valid JSON format, or not one the stand-in evaluates: "+err.Error())
			return
		}
	}
	tags, ok := members(form, "Tags", ".Key", ".Value")
	if !ok {
		s.validationError(w, "sts", "Tags: members must be numbered from 1, each with a Key")
		return
	}
	if len(tags) > 50 {
		s.validationError(w, "sts", "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
		return
	}
	transitive, ok := members(form, "TransitiveTagKeys", "")
	if !ok {
		s.validationError(w, "sts", "TransitiveTagKeys: members must be numbered from 1")
		return
	}
	var transitiveKeys []string
	for _, m := range transitive {
		transitiveKeys = append(transitiveKeys, m[0])
	}
	tagMap, seen := map[string]string{}, map[string]bool{}
	packed := utf8.RuneCountInString(policyText)
	for _, kv := range tags {
		if seen[strings.ToLower(kv[0])] {
			s.queryError(w, "sts", http.StatusBadRequest, "InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
			return
		}
		seen[strings.ToLower(kv[0])] = true
		tagMap[kv[0]] = kv[1]
		packed += utf8.RuneCountInString(kv[0]) + utf8.RuneCountInString(kv[1])
	}
	percent := (packed*100 + s.packedLimit - 1) / s.packedLimit
	if percent > 100 {
		s.queryError(w, "sts", http.StatusBadRequest, "PackedPolicyTooLarge",
			fmt.Sprintf("Packed policy consumes %d%% of allotted space, please use smaller policy.", percent))
		return
	}

	now := s.now()
	sess := &session{
		Session: Session{
			AccessKeyID: "ASIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
			RoleARN:     RoleARN(r.name), SessionName: name, SourceIdentity: sourceIdentity,
			Tags: tagMap, TransitiveTagKeys: transitiveKeys, Policy: policyText, Issued: now, Expiration: now.Add(duration),
		},
		secret: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
		token:  randomBase64(180),
		role:   r, policy: policy,
	}
	s.sessions[sess.AccessKeyID] = sess
	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	type user struct {
		Arn           string
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	s.answer(w, "sts", "AssumeRole", struct {
		XMLName          xml.Name `xml:"AssumeRoleResult"`
		SourceIdentity   string   `xml:",omitempty"`
		AssumedRoleUser  user
		Credentials      credentials
		PackedPolicySize int
	}{
		SourceIdentity:   sourceIdentity,
		AssumedRoleUser:  user{sess.arn(), roleID(r.name) + ":" + name},
		Credentials:      credentials{sess.AccessKeyID, sess.secret, sess.token, sess.Expiration.Format(time.RFC3339)},
		PackedPolicySize: percent,
	})
}

// members reads the list parameter prefix.member.N (with each suffix, the
// first required), numbered from 1 without gaps.
func members(form url.Values, prefix string, suffixes ...string) ([][]string, bool) {
	var out [][]string
	for n := 1; ; n++ {
		base := prefix + ".member." + strconv.Itoa(n)
		if _, ok := form[base+suffixes[0]]; !ok {
			break
		}
		var m []string
		for _, s := range suffixes {
			m = append(m, form.Get(base+s))
		}
		out = append(out, m)
	}
	count := 0
	for k := range form {
		if strings.HasPrefix(k, prefix+".member.") && strings.HasSuffix(k, suffixes[0]) {
			count++
		}
	}
	return out, count == len(out)
}

// getCallerIdentity answers who signed the request. s.mu is held.
func (s *Server) getCallerIdentity(w http.ResponseWriter, who *session) {
	arn, userID := BrokerARN, roleID("warden-broker")+":warden-broker"
	if who != nil {
		arn, userID = who.arn(), roleID(who.role.name)+":"+who.SessionName
	}
	s.answer(w, "sts", "GetCallerIdentity", struct {
		XMLName xml.Name `xml:"GetCallerIdentityResult"`
		Arn     string
		UserID  string `xml:"UserId"`
		Account string
	}{Arn: arn, UserID: userID, Account: AccountID})
}
