// Package awsiam makes the AWS IAM calls of Warden's credential broker:
// reading and writing the agent runtime role's inline policies, where a
// killed session's credentials are denied. Each call is one SigV4-signed
// POST of IAM's query protocol (by package awsquery), without the SDK's
// client, which would add to a function that must stay within 20 MB; the
// tests check that the SDK's client and this one send the same requests
// and read the same answers.
package awsiam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wardenhq/warden/shared/awsquery"
)

// Region is the region IAM, a global service, is signed for.
const Region = "us-east-1"

// Client calls IAM with Credentials.
type Client struct {
	Credentials aws.CredentialsProvider
	// Endpoint, if set, replaces https://iam.amazonaws.com.
	Endpoint string
	HTTP     *http.Client
}

// ErrNoSuchEntity: the role, or its policy of that name, does not exist.
// The error is also the *awsquery.Error IAM answered with.
var ErrNoSuchEntity = errors.New("iam: no such entity")

// ErrLimitExceeded: the role's inline policies together would exceed
// IAM's size limit. The error is also the *awsquery.Error.
var ErrLimitExceeded = errors.New("iam: limit exceeded")

// ErrInvalidInput: a role or policy name breaks IAM's rules; nothing was
// sent.
var ErrInvalidInput = errors.New("iam: invalid input")

var (
	roleNameRE   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	policyNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// PutRolePolicy sets the inline policy policyName of roleName to
// document, a JSON policy document.
func (c *Client) PutRolePolicy(ctx context.Context, roleName, policyName, document string) error {
	if document == "" {
		return fmt.Errorf("%w: put policy %s of role %s: an empty document", ErrInvalidInput, policyName, roleName)
	}
	return c.call(ctx, "PutRolePolicy", roleName, policyName, url.Values{"PolicyDocument": {document}}, nil)
}

// GetRolePolicy returns the inline policy policyName of roleName, decoded
// (IAM answers it URL-encoded).
func (c *Client) GetRolePolicy(ctx context.Context, roleName, policyName string) (string, error) {
	var out struct {
		PolicyDocument string
	}
	if err := c.call(ctx, "GetRolePolicy", roleName, policyName, nil, &out); err != nil {
		return "", err
	}
	doc, err := url.PathUnescape(out.PolicyDocument)
	if err != nil {
		return "", fmt.Errorf("get policy %s of role %s: the document is not URL-encoded: %w", policyName, roleName, err)
	}
	return doc, nil
}

// ListRolePolicies returns the names of roleName's inline policies, every
// page of them.
func (c *Client) ListRolePolicies(ctx context.Context, roleName string) ([]string, error) {
	if err := checkRole(roleName); err != nil {
		return nil, err
	}
	var names []string
	marker := ""
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("list the policies of role %s: more than %d pages", roleName, maxListPages)
		}
		params := url.Values{"RoleName": {roleName}}
		if marker != "" {
			params.Set("Marker", marker)
		}
		var out struct {
			PolicyNames struct {
				Member []string `xml:"member"`
			}
			IsTruncated bool
			Marker      string
		}
		if err := c.query().Call(ctx, "ListRolePolicies", params, &out); err != nil {
			return nil, fmt.Errorf("list the policies of role %s: %w", roleName, classify(err))
		}
		names = append(names, out.PolicyNames.Member...)
		if !out.IsTruncated || out.Marker == "" {
			return names, nil
		}
		marker = out.Marker
	}
}

// maxListPages bounds the pages ListRolePolicies reads (100 names each).
const maxListPages = 100

// DeleteRolePolicy deletes the inline policy policyName of roleName.
func (c *Client) DeleteRolePolicy(ctx context.Context, roleName, policyName string) error {
	return c.call(ctx, "DeleteRolePolicy", roleName, policyName, nil, nil)
}

func (c *Client) call(ctx context.Context, action, roleName, policyName string, params url.Values, out any) error {
	if err := checkRole(roleName); err != nil {
		return err
	}
	if !policyNameRE.MatchString(policyName) {
		return fmt.Errorf("%w: policy name %q: want 1 to 128 letters, digits or _+=,.@-", ErrInvalidInput, policyName)
	}
	if params == nil {
		params = url.Values{}
	}
	params.Set("RoleName", roleName)
	params.Set("PolicyName", policyName)
	if err := c.query().Call(ctx, action, params, out); err != nil {
		return fmt.Errorf("policy %s of role %s: %w", policyName, roleName, classify(err))
	}
	return nil
}

func (c *Client) query() *awsquery.Client {
	return &awsquery.Client{Region: Region, Credentials: c.Credentials, Service: "iam", Endpoint: c.Endpoint, Version: "2010-05-08", HTTP: c.HTTP}
}

// checkRole refuses a name IAM would refuse as a role's.
func checkRole(name string) error {
	if !roleNameRE.MatchString(name) {
		return fmt.Errorf("%w: role name %q: want 1 to 64 letters, digits or _+=,.@-", ErrInvalidInput, name)
	}
	return nil
}

// classify gives IAM's errors a caller acts on their sentinels.
func classify(err error) error {
	return awsquery.Sentinel(err, map[string]error{"NoSuchEntity": ErrNoSuchEntity, "LimitExceeded": ErrLimitExceeded})
}
