// Package awssts makes the AWS STS call of Warden's credential broker:
// AssumeRole into the agent runtime role, with a session policy compiled
// from Warden's policy, the Warden session as SourceIdentity, and session
// tags. It is one SigV4-signed POST of STS's query protocol (by package
// awsquery), without the SDK's client, which would add to a function that
// must stay within 20 MB; the tests check that the SDK's client and this
// one send the same requests and read the same answers.
package awssts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wardenhq/warden/shared/awsquery"
)

// Client calls STS in Region with Credentials (the broker's own).
type Client struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint, if set, replaces https://sts.REGION.amazonaws.com.
	Endpoint string
	HTTP     *http.Client
}

// Errors for the answers a caller acts on; the others are
// *awsquery.Error. Each error STS answered with is also an
// *awsquery.Error, whatever its sentinel.
var (
	// ErrPackedPolicyTooLarge: the session policy and tags, as STS packs
	// them, take more than their allotted space.
	ErrPackedPolicyTooLarge = errors.New("sts: the session policy and tags are too large once packed")
	// ErrAccessDenied: the caller may not assume the role (or set its
	// source identity or tags, as the role's trust policy says).
	ErrAccessDenied = errors.New("sts: access denied")
	// ErrRegionDisabled: STS is not activated in the region.
	ErrRegionDisabled = errors.New("sts: STS is not activated in the region")
	// ErrInvalidInput: AssumeRole's input breaks one of STS's rules; it
	// was not sent.
	ErrInvalidInput = errors.New("sts: invalid input")
)

// Tag is a session tag.
type Tag struct {
	Key, Value string
}

// AssumeRoleInput is what AssumeRole sends. Zero fields are not sent.
type AssumeRoleInput struct {
	RoleARN     string
	SessionName string
	// Policy is the inline session policy, a JSON document.
	Policy string
	// DurationSeconds is the credentials' lifetime; zero is STS's
	// default, an hour. It must not exceed the role's maximum session
	// duration.
	DurationSeconds int32
	// SourceIdentity is set on the session for good: it shows in
	// CloudTrail and in conditions as aws:SourceIdentity.
	SourceIdentity    string
	Tags              []Tag
	TransitiveTagKeys []string
}

// Credentials are the temporary credentials AssumeRole returns.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
	// PackedPolicySize is the percentage of the allotted space the
	// session policy and tags take.
	PackedPolicySize int
	// AssumedRoleARN is the session's ARN,
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
	AssumedRoleARN string
}

// String names the credentials without their secret and token.
func (c Credentials) String() string {
	return fmt.Sprintf("%s (%s, until %s)", c.AccessKeyID, c.AssumedRoleARN, c.Expiration.UTC().Format(time.RFC3339))
}

// GoString is String, so that %#v does not print the secret either.
func (c Credentials) GoString() string { return c.String() }

// Limits of AssumeRole's input, as STS documents them.
const (
	MinDuration       = 900
	MaxDuration       = 43200
	MaxPolicyChars    = 2048
	MaxTags           = 50
	MaxTagKeyChars    = 128
	MaxTagValueChars  = 256
	maxRoleARNChars   = 2048
	minNameChars      = 2
	maxNameChars      = 64
	maxTransitiveKeys = 50
)

var (
	// nameRE is the character set of session names and source
	// identities.
	nameRE = regexp.MustCompile(`^[\w+=,.@-]*$`)
	// tagRE is the character set of tag keys and values.
	tagRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// Validate checks the input against STS's rules, so that a mistake is
// reported before anything is sent.
func (in *AssumeRoleInput) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
	}
	if n := len(in.RoleARN); n < 20 || n > maxRoleARNChars || !strings.HasPrefix(in.RoleARN, "arn:") {
		return bad("role ARN %q: want an ARN of 20 to %d characters", in.RoleARN, maxRoleARNChars)
	}
	if err := checkName("session name", in.SessionName); err != nil {
		return bad("%v", err)
	}
	if in.SourceIdentity != "" {
		if strings.HasPrefix(strings.ToLower(in.SourceIdentity), "aws:") {
			return bad("source identity %q: must not start with \"aws:\"", in.SourceIdentity)
		}
		if err := checkName("source identity", in.SourceIdentity); err != nil {
			return bad("%v", err)
		}
	}
	if in.DurationSeconds != 0 && (in.DurationSeconds < MinDuration || in.DurationSeconds > MaxDuration) {
		return bad("duration %d s: want %d to %d", in.DurationSeconds, MinDuration, MaxDuration)
	}
	if n := utf8.RuneCountInString(in.Policy); n > MaxPolicyChars {
		return bad("session policy: %d characters, over STS's %d", n, MaxPolicyChars)
	}
	for i, r := range in.Policy {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF) {
			return bad("session policy: character %q at byte %d: STS takes tab, newline, carriage return and U+0020 to U+00FF", r, i)
		}
	}
	if len(in.Tags) > MaxTags {
		return bad("%d session tags, over STS's %d", len(in.Tags), MaxTags)
	}
	seen := map[string]bool{}
	for _, tag := range in.Tags {
		if err := checkTag(tag); err != nil {
			return bad("%v", err)
		}
		k := strings.ToLower(tag.Key)
		if seen[k] {
			return bad("session tag %q: given twice (tag keys are case-insensitive)", tag.Key)
		}
		seen[k] = true
	}
	if len(in.TransitiveTagKeys) > maxTransitiveKeys {
		return bad("%d transitive tag keys, over STS's %d", len(in.TransitiveTagKeys), maxTransitiveKeys)
	}
	for _, k := range in.TransitiveTagKeys {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyChars || !tagRE.MatchString(k) {
			return bad("transitive tag key %q: want 1 to %d letters, digits, spaces or _.:/=+-@", k, MaxTagKeyChars)
		}
	}
	return nil
}

func checkName(what, s string) error {
	if n := len(s); n < minNameChars || n > maxNameChars || !nameRE.MatchString(s) {
		return fmt.Errorf("%s %q: want %d to %d letters, digits or _+=,.@-", what, s, minNameChars, maxNameChars)
	}
	return nil
}

func checkTag(t Tag) error {
	if n := utf8.RuneCountInString(t.Key); n < 1 || n > MaxTagKeyChars || !tagRE.MatchString(t.Key) {
		return fmt.Errorf("session tag key %q: want 1 to %d letters, digits, spaces or _.:/=+-@", t.Key, MaxTagKeyChars)
	}
	if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
		return fmt.Errorf("session tag key %q: must not start with \"aws:\"", t.Key)
	}
	if n := utf8.RuneCountInString(t.Value); n > MaxTagValueChars || !tagRE.MatchString(t.Value) {
		return fmt.Errorf("session tag %q: value %q: want up to %d letters, digits, spaces or _.:/=+-@", t.Key, t.Value, MaxTagValueChars)
	}
	return nil
}

// params are the query parameters of AssumeRole for in, named and
// numbered as the SDK's client names them.
func (in *AssumeRoleInput) params() url.Values {
	p := url.Values{}
	set := func(k, v string) {
		if v != "" {
			p.Set(k, v)
		}
	}
	set("RoleArn", in.RoleARN)
	set("RoleSessionName", in.SessionName)
	set("Policy", in.Policy)
	if in.DurationSeconds != 0 {
		p.Set("DurationSeconds", strconv.Itoa(int(in.DurationSeconds)))
	}
	set("SourceIdentity", in.SourceIdentity)
	for i, t := range in.Tags {
		n := strconv.Itoa(i + 1)
		p.Set("Tags.member."+n+".Key", t.Key)
		p.Set("Tags.member."+n+".Value", t.Value)
	}
	for i, k := range in.TransitiveTagKeys {
		p.Set("TransitiveTagKeys.member."+strconv.Itoa(i+1), k)
	}
	return p
}

// assumeRoleResult is the <AssumeRoleResult> of STS's answer.
type assumeRoleResult struct {
	Credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      time.Time
	}
	AssumedRoleUser struct {
		Arn string
	}
	PackedPolicySize int
}

// AssumeRole assumes in.RoleARN. A refusal is ErrAccessDenied,
// ErrPackedPolicyTooLarge or ErrRegionDisabled when STS says so, else an
// *awsquery.Error; input that breaks STS's rules is ErrInvalidInput.
func (c *Client) AssumeRole(ctx context.Context, in AssumeRoleInput) (Credentials, error) {
	if err := in.Validate(); err != nil {
		return Credentials{}, err
	}
	q := &awsquery.Client{Region: c.Region, Credentials: c.Credentials, Service: "sts", Endpoint: c.Endpoint, Version: "2011-06-15", HTTP: c.HTTP}
	var out assumeRoleResult
	if err := q.Call(ctx, "AssumeRole", in.params(), &out); err != nil {
		return Credentials{}, fmt.Errorf("assume %s as %s: %w", in.RoleARN, in.SessionName, sentinel(err))
	}
	cr := Credentials{
		AccessKeyID:      out.Credentials.AccessKeyID,
		SecretAccessKey:  out.Credentials.SecretAccessKey,
		SessionToken:     out.Credentials.SessionToken,
		Expiration:       out.Credentials.Expiration,
		PackedPolicySize: out.PackedPolicySize,
		AssumedRoleARN:   out.AssumedRoleUser.Arn,
	}
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" || cr.SessionToken == "" || cr.Expiration.IsZero() {
		return Credentials{}, fmt.Errorf("assume %s as %s: the answer has incomplete credentials", in.RoleARN, in.SessionName)
	}
	return cr, nil
}

// sentinel gives STS's errors with a sentinel their sentinel.
func sentinel(err error) error {
	return awsquery.Sentinel(err, map[string]error{"PackedPolicyTooLarge": ErrPackedPolicyTooLarge,
		"AccessDenied": ErrAccessDenied, "RegionDisabledException": ErrRegionDisabled})
}
