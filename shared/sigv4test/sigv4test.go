// Package sigv4test verifies AWS Signature Version 4 on requests that
// stand-ins for AWS services receive, computed here from the
// specification rather than by the SDK that signed them, so that a test
// shows the request would pass AWS's own check.
package sigv4test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Credentials are what a request must be signed with.
type Credentials struct {
	AccessKey, SecretKey string
	Region, Service      string
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// Verify checks that r, whose body is body, carries a valid signature by
// c. It requires host and x-amz-date to be signed, along with every
// header in mustSign.
func Verify(r *http.Request, body []byte, c Credentials, mustSign ...string) error {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Errorf("Authorization %q is not a SigV4 header", r.Header.Get("Authorization"))
	}
	key, day, region, service, signedList, signature := m[1], m[2], m[3], m[4], m[5], m[6]
	switch {
	case key != c.AccessKey:
		return fmt.Errorf("signed with access key %s, want %s", key, c.AccessKey)
	case region != c.Region || service != c.Service:
		return fmt.Errorf("signed for %s/%s, want %s/%s", region, service, c.Region, c.Service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(amzDate, day) || len(amzDate) != len("20060102T150405Z") {
		return fmt.Errorf("X-Amz-Date %q does not match the credential's day %s", amzDate, day)
	}
	signed := strings.Split(signedList, ";")
	for _, h := range append([]string{"host", "x-amz-date"}, mustSign...) {
		if !slices.Contains(signed, strings.ToLower(h)) {
			return fmt.Errorf("header %s is not signed (%s)", h, signedList)
		}
	}
	var cr strings.Builder
	cr.WriteString(r.Method + "\n" + canonicalPath(r.URL) + "\n" + canonicalQuery(r.URL) + "\n")
	for _, h := range signed {
		v := strings.Join(r.Header.Values(h), ",")
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		}
		fmt.Fprintf(&cr, "%s:%s\n", h, strings.Join(strings.Fields(v), " "))
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	fmt.Fprintf(&cr, "\n%s\n%s", signedList, payload)
	crSum := sha256.Sum256([]byte(cr.String()))
	scope := day + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	k := []byte("AWS4" + c.SecretKey)
	for _, part := range []string{day, region, service, "aws4_request", toSign} {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(part))
		k = mac.Sum(nil)
	}
	if want := hex.EncodeToString(k); signature != want {
		return fmt.Errorf("signature %s, computed %s over:\n%s", signature, want, cr.String())
	}
	return nil
}

// canonicalPath is the URI-encoded path, each segment encoded once more
// as the SDKs do for services other than S3.
func canonicalPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = Encode(s)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery is the query with keys and values encoded and sorted.
func canonicalQuery(u *url.URL) string {
	var pairs []string
	for k, vs := range u.Query() {
		for _, v := range vs {
			pairs = append(pairs, Encode(k)+"="+Encode(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// Encode percent-encodes every byte but the unreserved characters of RFC
// 3986, as SigV4 encodes, and as IAM encodes the policy documents it
// returns.
func Encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
