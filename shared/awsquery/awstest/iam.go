package awstest

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"unicode"

	"github.com/wardenhq/warden/policy/iameval"
	"github.com/wardenhq/warden/shared/sigv4test"
)

// MaxRolePolicyChars is IAM's limit on the inline policies of a role
// together, whitespace left out.
const MaxRolePolicyChars = 10240

var (
	roleNameRE   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	policyNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// iamRole finds the role of form's RoleName, checking PolicyName too, or
// answers the refusal. s.mu is held.
func (s *Server) iamRole(w http.ResponseWriter, form url.Values) (*role, string, bool) {
	name, policyName := form.Get("RoleName"), form.Get("PolicyName")
	switch {
	case !roleNameRE.MatchString(name):
		s.validationError(w, "iam", "1 validation error detected: Value '%s' at 'roleName' failed to satisfy constraint: Member must have length 1 to 64 and satisfy regular expression pattern: [\\w+=,.@-]+", name)
	case !policyNameRE.MatchString(policyName):
		s.validationError(w, "iam", "1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must have length 1 to 128 and satisfy regular expression pattern: [\\w+=,.@-]+", policyName)
	case s.roles[name] == nil:
		s.queryError(w, "iam", http.StatusNotFound, "NoSuchEntity", fmt.Sprintf("The role with name %s cannot be found.", name))
	default:
		return s.roles[name], policyName, true
	}
	return nil, "", false
}

// putRolePolicy serves PutRolePolicy. s.mu is held.
func (s *Server) putRolePolicy(w http.ResponseWriter, form url.Values) {
	r, policyName, ok := s.iamRole(w, form)
	if !ok {
		return
	}
	text := form.Get("PolicyDocument")
	doc, err := iameval.Parse([]byte(text))
	if err != nil {
		s.queryError(w, "iam", http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy, or a policy the stand-in does not evaluate: "+err.Error())
		return
	}
	total := countChars(text)
	for name, other := range r.policies {
		if name != policyName {
			total += countChars(other)
		}
	}
	if total > MaxRolePolicyChars {
		s.queryError(w, "iam", http.StatusConflict, "LimitExceeded", fmt.Sprintf("Maximum policy size of %d bytes exceeded for role %s", MaxRolePolicyChars, r.name))
		return
	}
	r.policies[policyName], r.parsed[policyName] = text, doc
	s.answer(w, "iam", "PutRolePolicy", nil)
}

// countChars counts what IAM counts against its size limits: the
// characters but whitespace.
func countChars(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// getRolePolicy serves GetRolePolicy, the document URL-encoded as IAM
// answers it. s.mu is held.
func (s *Server) getRolePolicy(w http.ResponseWriter, form url.Values) {
	r, policyName, ok := s.iamRole(w, form)
	if !ok {
		return
	}
	text, ok := r.policies[policyName]
	if !ok {
		s.queryError(w, "iam", http.StatusNotFound, "NoSuchEntity", fmt.Sprintf("The role policy with name %s cannot be found.", policyName))
		return
	}
	s.answer(w, "iam", "GetRolePolicy", struct {
		XMLName        xml.Name `xml:"GetRolePolicyResult"`
		RoleName       string
		PolicyName     string
		PolicyDocument string
	}{RoleName: r.name, PolicyName: policyName, PolicyDocument: sigv4test.Encode(text)})
}

// deleteRolePolicy serves DeleteRolePolicy. s.mu is held.
func (s *Server) deleteRolePolicy(w http.ResponseWriter, form url.Values) {
	r, policyName, ok := s.iamRole(w, form)
	if !ok {
		return
	}
	if _, ok := r.policies[policyName]; !ok {
		s.queryError(w, "iam", http.StatusNotFound, "NoSuchEntity", fmt.Sprintf("The role policy with name %s cannot be found.", policyName))
		return
	}
	delete(r.policies, policyName)
	delete(r.parsed, policyName)
	s.answer(w, "iam", "DeleteRolePolicy", nil)
}

// listRolePolicies serves ListRolePolicies: the names in order, MaxItems
// (default 100) a page, the next page's Marker when truncated. s.mu is
// held.
func (s *Server) listRolePolicies(w http.ResponseWriter, form url.Values) {
	name := form.Get("RoleName")
	r := s.roles[name]
	if r == nil {
		s.queryError(w, "iam", http.StatusNotFound, "NoSuchEntity", fmt.Sprintf("The role with name %s cannot be found.", name))
		return
	}
	names := slices.Sorted(maps.Keys(r.policies))
	limit := 100
	if v, err := strconv.Atoi(form.Get("MaxItems")); err == nil && v > 0 && v <= 1000 {
		limit = v
	}
	start := 0
	if m := form.Get("Marker"); m != "" {
		start = slices.IndexFunc(names, func(n string) bool { return n > m })
		if start < 0 {
			start = len(names)
		}
	}
	page := names[start:min(start+limit, len(names))]
	result := struct {
		XMLName     xml.Name `xml:"ListRolePoliciesResult"`
		PolicyNames struct {
			Member []string `xml:"member"`
		}
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{IsTruncated: start+len(page) < len(names)}
	result.PolicyNames.Member = page
	if result.IsTruncated {
		result.Marker = page[len(page)-1]
	}
	s.answer(w, "iam", "ListRolePolicies", result)
}
