// Package slackevent fills in the sample events of Slack's interactivity
// requests (events/slack) for tests: the placeholders in the form body,
// then the timestamp and the signature Slack makes with the app's signing
// secret (v0: HMAC-SHA256 of "v0:timestamp:body").
package slackevent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Fill returns the API Gateway event of raw with vars ({{name}}: value) in
// its body, signed with secret at now.
func Fill(raw []byte, vars map[string]string, secret string, now time.Time) (*events.APIGatewayProxyRequest, error) {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	for k, v := range vars {
		ev.Body = strings.ReplaceAll(ev.Body, url.QueryEscape("{{"+k+"}}"), url.QueryEscape(v))
	}
	stamp := fmt.Sprint(now.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, ev.Body)
	sig := "v0=" + hex.EncodeToString(mac.Sum(nil))
	ev.Headers["X-Slack-Request-Timestamp"], ev.Headers["X-Slack-Signature"] = stamp, sig
	ev.MultiValueHeaders["X-Slack-Request-Timestamp"] = []string{stamp}
	ev.MultiValueHeaders["X-Slack-Signature"] = []string{sig}
	return &ev, nil
}
