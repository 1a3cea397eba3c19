// Package awsquery makes calls of AWS's query protocol (STS, IAM) as
// single SigV4-signed POSTs, for the few calls the Lambda functions make
// to services whose SDK clients would take too much of their 20 MB (STS's
// AssumeRole, IAM's role policies). Each caller checks, in its tests, that
// it sends what the SDK's client sends.
package awsquery

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxAnswer bounds the answer read: more is an error.
const MaxAnswer = 64 << 10

// ContentType is the type of the requests' form bodies.
const ContentType = "application/x-www-form-urlencoded; charset=utf-8"

// Client calls one service with Credentials.
type Client struct {
	// Region is the region requests are signed for; IAM, a global
	// service, is signed for us-east-1.
	Region      string
	Credentials aws.CredentialsProvider
	// Service is the signing name: "sts", "iam".
	Service string
	// Endpoint, if set, replaces https://iam.amazonaws.com for "iam" and
	// https://SERVICE.REGION.amazonaws.com for the others.
	Endpoint string
	// Version is the API's version: "2011-06-15" for STS, "2010-05-08"
	// for IAM.
	Version string
	HTTP    *http.Client
}

// Error is an error answer of the service's.
type Error struct {
	Service, Action string
	// Status is the HTTP status of the answer.
	Status int
	// Type is "Sender" (the request's fault) or "Receiver" (the
	// service's), when the answer says.
	Type                     string
	Code, Message, RequestID string
}

// Sentinel gives an Error whose code byCode names its sentinel: the
// result reads as the Error and matches both (errors.Is, errors.As). Any
// other error is returned as it is.
func Sentinel(err error, byCode map[string]error) error {
	var e *Error
	if errors.As(err, &e) {
		if s, ok := byCode[e.Code]; ok {
			return &coded{s, e}
		}
	}
	return err
}

type coded struct {
	sentinel error
	answer   *Error
}

func (e *coded) Error() string   { return e.answer.Error() }
func (e *coded) Unwrap() []error { return []error{e.sentinel, e.answer} }

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %s (HTTP %d)", e.Service, e.Action, e.Code, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Call posts action with params (Action and Version are added) and
// decodes the <{action}Result> element of the answer into result, unless
// result is nil. An error answer is an *Error; an error without one (the
// request could not be made or had no answer) is worth another try.
func (c *Client) Call(ctx context.Context, action string, params url.Values, result any) error {
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("Action", action)
	form.Set("Version", c.Version)
	body := []byte(form.Encode())

	endpoint := "https://" + c.Service + "." + c.Region + ".amazonaws.com"
	if c.Service == "iam" {
		endpoint = "https://iam.amazonaws.com"
	}
	endpoint = cmp.Or(strings.TrimRight(c.Endpoint, "/"), endpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.Service, action, err)
	}
	req.Header.Set("Content-Type", ContentType)
	if c.Credentials == nil {
		return fmt.Errorf("%s %s: no credentials", c.Service, action)
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: credentials: %w", c.Service, action, err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.Service, c.Region, time.Now()); err != nil {
		return fmt.Errorf("%s %s: sign: %w", c.Service, action, err)
	}
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.Service, action, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: read the answer (HTTP %d): %w", c.Service, action, resp.StatusCode, err)
	case len(data) > MaxAnswer:
		return fmt.Errorf("%s %s: the answer (HTTP %d) is over %d bytes", c.Service, action, resp.StatusCode, MaxAnswer)
	}
	err = ParseAnswer(action, resp.StatusCode, data, result)
	var e *Error
	if errors.As(err, &e) {
		e.Service = c.Service
		e.RequestID = cmp.Or(e.RequestID, resp.Header.Get("X-Amzn-Requestid"))
		return e
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.Service, action, err)
	}
	return nil
}

// ParseAnswer reads the answer to action: for a 2xx status, the
// <{action}Result> element of <{action}Response> into result (unless
// result is nil); for another, the error, as an *Error. An answer it
// cannot read is an error that says why.
func ParseAnswer(action string, status int, data []byte, result any) error {
	if status < 200 || status > 299 {
		return parseError(action, status, data)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root, err := nextStart(dec)
	if err != nil {
		return fmt.Errorf("the answer (HTTP %d) is not XML: %w", status, err)
	}
	if root.Name.Local != action+"Response" {
		return fmt.Errorf("the answer (HTTP %d) is <%s>, want <%sResponse>", status, root.Name.Local, action)
	}
	if result == nil {
		return nil
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("the answer (HTTP %d) has no <%sResult>: %w", status, action, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != action+"Result" {
				if err := dec.Skip(); err != nil {
					return fmt.Errorf("the answer (HTTP %d) is not XML: %w", status, err)
				}
				continue
			}
			if err := dec.DecodeElement(result, &t); err != nil {
				return fmt.Errorf("the answer's <%sResult> could not be read: %w", action, err)
			}
			return nil
		case xml.EndElement:
			return fmt.Errorf("the answer (HTTP %d) has no <%sResult>", status, action)
		}
	}
}

// nextStart returns the first start element.
func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if t, ok := tok.(xml.StartElement); ok {
			return t, nil
		}
	}
}

// parseError reads an <ErrorResponse>. Without one (a proxy's page), the
// code is HTTP and the status, as "HTTP502".
func parseError(action string, status int, data []byte) *Error {
	var answer struct {
		Error struct {
			Type, Code, Message string
		}
		RequestID string `xml:"RequestId"`
	}
	_ = xml.Unmarshal(data, &answer)
	e := answer.Error
	return &Error{
		Action:    action,
		Status:    status,
		Type:      strings.TrimSpace(e.Type),
		Code:      cmp.Or(strings.TrimSpace(e.Code), fmt.Sprintf("HTTP%d", status)),
		Message:   strings.TrimSpace(e.Message),
		RequestID: strings.TrimSpace(answer.RequestID),
	}
}
