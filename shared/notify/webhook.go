package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The headers of a webhook delivery.
const (
	// SignatureHeader is "sha256=" and the hex HMAC-SHA256, keyed with the
	// channel's secret, of the timestamp header's value, ".", and the body.
	// It is sent only when the channel names a secret.
	SignatureHeader = "X-Warden-Signature"
	// TimestampHeader is the Unix time of the attempt, in seconds.
	TimestampHeader = "X-Warden-Timestamp"
	// DeliveryHeader identifies the delivery; retries repeat it.
	DeliveryHeader = "X-Warden-Delivery"
	// EventHeader is the message's Event.
	EventHeader = "X-Warden-Event"
)

// MaxWebhookURL bounds a webhook URL.
const MaxWebhookURL = 2048

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	// ID is the delivery's ID, as in DeliveryHeader.
	ID       string    `json:"id"`
	Event    string    `json:"event,omitempty"`
	Time     time.Time `json:"time"`
	Severity Severity  `json:"severity"`
	Title    string    `json:"title"`
	Text     string    `json:"text,omitempty"`
	Fields   []Field   `json:"fields,omitempty"`
	Link     string    `json:"link,omitempty"`
}

// webhookURL checks a webhook URL: https, or http only to the loopback
// names the policy accepts (127.0.0.1, localhost), without credentials.
// Errors never repeat the URL, which may embed a token.
func webhookURL(raw string) (*url.URL, error) {
	if len(raw) > MaxWebhookURL {
		return nil, fmt.Errorf("the webhook url is %d bytes; the limit is %d", len(raw), MaxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("the webhook url is not an absolute URL")
	}
	if u.User != nil {
		return nil, errors.New("the webhook url holds credentials; name a secret: instead")
	}
	switch host := u.Hostname(); {
	case u.Scheme == "https":
	case u.Scheme == "http" && (host == "127.0.0.1" || host == "localhost"):
	default:
		return nil, errors.New("the webhook url must be https (http only to 127.0.0.1 or localhost)")
	}
	return u, nil
}

// webhook POSTs the message as JSON, signed when the channel has a secret.
func (n *Notifier) webhook(ctx context.Context, d delivery) error {
	u, err := webhookURL(d.Channel.URL)
	if err != nil {
		return err
	}
	m := d.msg
	body, err := json.Marshal(WebhookBody{ID: d.id, Event: m.Event, Time: m.Time, Severity: m.Severity,
		Title: m.Title, Text: m.Text, Fields: m.Fields, Link: m.Link})
	if err != nil {
		return fmt.Errorf("webhook: encode message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("webhook: the url is invalid")
	}
	ts := strconv.FormatInt(n.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Warden-Webhook/1")
	req.Header.Set(DeliveryHeader, d.id)
	req.Header.Set(TimestampHeader, ts)
	if m.Event != "" {
		req.Header.Set(EventHeader, m.Event)
	}
	if d.secret != "" {
		req.Header.Set(SignatureHeader, Sign(d.secret, ts, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if ne := netError(err); ne != nil {
			return &retryable{err: fmt.Errorf("webhook to %s: %w", u.Hostname(), ne)}
		}
		return &retryable{err: fmt.Errorf("webhook to %s: request failed", u.Hostname())}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusTooManyRequests || s >= 500:
		return &retryable{err: fmt.Errorf("webhook to %s answered HTTP %d", u.Hostname(), s), after: retryAfter(resp.Header)}
	case s >= 300 && s < 400:
		return fmt.Errorf("webhook to %s answered HTTP %d; redirects are not followed", u.Hostname(), s)
	default:
		return fmt.Errorf("webhook to %s answered HTTP %d", u.Hostname(), s)
	}
}

// retryAfter reads a Retry-After header given in seconds; 0 otherwise.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if len(v) > 6 {
		return MaxRetryAfter
	}
	s, err := strconv.Atoi(v)
	if err != nil || s < 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, MaxRetryAfter)
}

// Sign returns the SignatureHeader value of a webhook body sent at the
// timestamp (the TimestampHeader value): "sha256=" and the hex
// HMAC-SHA256, keyed with secret, of timestamp + "." + body.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is returned by Verify for a signature that does not
// match the body, timestamp and secret.
var ErrBadSignature = errors.New("webhook signature does not match")

// Verify is what a webhook receiver runs on a delivery: it checks the
// SignatureHeader value against the body and the TimestampHeader value,
// in constant time, and that the timestamp is within tolerance of now, so
// that a captured delivery cannot be replayed later.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return fmt.Errorf("%w: the signature is not sha256= and 64 hex digits", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: the signature is not sha256= and 64 hex digits", ErrBadSignature)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || len(timestamp) > 12 || ts < 0 {
		return fmt.Errorf("%w: the timestamp is not Unix seconds", ErrBadSignature)
	}
	if skew := now.Sub(time.Unix(ts, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("%w: the timestamp is %s away from now; the tolerance is %s", ErrBadSignature, skew.Round(time.Second), tolerance)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, body), "sha256="))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}
