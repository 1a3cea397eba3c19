package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// A deployment on AWS authorizes the admin API with IAM: API Gateway
// checks a SigV4 signature made with the operator's AWS credentials, and
// there is no admin token. The CLI signs when the endpoint is an API
// Gateway URL (its region read from the host name) or when --aws-region
// says so (a custom domain).

// executeAPIHost matches API Gateway's default host names.
var executeAPIHost = regexp.MustCompile(`^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$`)

// sigv4Region is the region to sign requests to endpoint for: flag if set,
// else the region of an API Gateway host name, else "" (no signing).
func sigv4Region(endpoint, flag string) string {
	if flag != "" {
		return flag
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	if m := executeAPIHost.FindStringSubmatch(u.Hostname()); m != nil {
		return m[1]
	}
	return ""
}

// sigv4Signer signs requests for API Gateway (service execute-api) in
// region with the credentials of the AWS configuration (environment,
// shared files, SSO, instance role...).
type sigv4Signer struct {
	region string
	creds  aws.CredentialsProvider
	signer *v4.Signer
	now    func() time.Time
}

func newSigV4Signer(ctx context.Context, region string) (*sigv4Signer, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("load your AWS configuration to sign admin requests: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("no AWS credentials to sign admin requests with")
	}
	return &sigv4Signer{region: region, creds: cfg.Credentials, signer: v4.NewSigner(), now: time.Now}, nil
}

// sign adds the SigV4 headers to req, whose body is body.
func (s *sigv4Signer) sign(ctx context.Context, req *http.Request, body []byte) error {
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("get AWS credentials to sign admin requests: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", s.region, s.now()); err != nil {
		return fmt.Errorf("sign the request: %w", err)
	}
	return nil
}
